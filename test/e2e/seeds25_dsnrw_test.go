package e2e

// relay-enforcer's manual, run as written by the seeds25 checker: its
// Postfix set-up (the smtp_dsn_rw transport with smtp_reply_filter =
// pcre:smtp_dsn_rw_filter.pcre) in a real Postfix, relaying to a fake
// Gmail, and postfix-enforcer on Postfix's log.

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// seeds25Refusals are Gmail's temporary refusals that relay-enforcer's
// filter makes permanent (its "fmod_" lines), by recipient, with what
// postfix-enforcer must do about each: the verdict Gmail's own reply
// gets ("relaykeeper enforce test").
var seeds25Refusals = []struct {
	to, ip, from, reply, want string
}{
	{"u1@gmail.test", "203.0.113.71", "bob@spam1.example",
		"421-4.7.0 [192.0.2.10 15] Our system has detected an unusual rate of\r\n421-4.7.0 unsolicited mail originating from your IP address. To protect our\r\n421-4.7.0 users from spam, mail sent from your IP address has been temporarily\r\n421 4.7.0 rate limited. s1 - gsmtp",
		"ban client=203.0.113.71 "},
	{"u2@gmail.test", "203.0.113.72", "bob@spam2.example",
		"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n421-4.7.28 from your IP Netblock [192.0.2.10 34]. To protect our users from spam,\r\n421 4.7.28 mail sent from your IP address has been temporarily rate limited. s2 - gsmtp",
		"ban client=203.0.113.72 "},
	{"u3@gmail.test", "203.0.113.73", "carol@lowrep.example",
		"421-4.7.0 [192.0.2.10 15] Our system has detected that this message is\r\n421-4.7.0 suspicious due to the very low reputation of the sending domain. To\r\n421-4.7.0 best protect our users from spam, the message has been blocked.\r\n421 4.7.0 s3 - gsmtp",
		"block-domain domain=lowrep.example "},
	// The filter's fmod_bulk line.
	{"u4@gmail.test", "203.0.113.74", "bob@spam4.example",
		"421-4.7.28 [192.0.2.10 15] Our system has detected an unusual rate of\r\n421-4.7.28 unsolicited mail originating from your IP address. To protect our\r\n421-4.7.28 users from spam, mail sent from your IP address has been temporarily\r\n421-4.7.28 rate limited. Please visit\r\n421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError to\r\n421 4.7.28 review our Bulk Email Senders Guidelines. s4 - gsmtp",
		"ban client=203.0.113.74 "},
	{"u5@gmail.test", "203.0.113.75", "dave@unauth.example",
		"421-4.7.26 This email has been rate limited because it is unauthenticated.\r\n421-4.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\r\n421-4.7.26 Authentication results: DKIM = did not pass SPF [unauth.example] with\r\n421-4.7.26 ip: [192.0.2.10] = did not pass\r\n421 4.7.26 s5 - gsmtp",
		// Encapsulation needs the backup (-f), which this test does not
		// give: the refusal is read as Gmail's and reported so.
		`rule=gmail-unauthenticated-sender why="no backup mailbox (-f)`},
}

// TestSeeds25DsnRewriteFilterThroughPostfix: the manual's master.cf
// transport "smtp_dsn_rw unix - - n - - smtp -o
// smtp_reply_filter=pcre:/etc/postfix/smtp_dsn_rw_filter.pcre" and its
// filter file as written, mail routed to it with transport_maps, Gmail's
// 421 replies made into 554 ...-fmod_generic by the filter as Postfix
// applies it (to each line of the reply). docs/postfix-enforcer.md says
// postfix-enforcer takes the marker off and acts on such a refusal as on
// Gmail's own: the spammer is banned, the low-reputation domain blocked,
// the unauthenticated message taken for an encapsulation.
func TestSeeds25DsnRewriteFilterThroughPostfix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	filter, err := os.ReadFile("../../internal/enforce/testdata/smtp_dsn_rw_filter.pcre")
	if err != nil {
		t.Fatal(err)
	}
	pcre := writeFile(t, dir, "smtp_dsn_rw_filter.pcre", string(filter), 0o644)
	replies := map[string]string{}
	for _, r := range seeds25Refusals {
		replies[r.to] = r.reply
	}
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
			if stage != harness.StageEndOfData || len(tx.Rcpts) == 0 {
				return harness.Response{}
			}
			return harness.Response{Reply: replies[strings.ToLower(tx.Rcpts[0].Addr)]}
		}})
	transport := writeFile(t, dir, "transport", "gmail.test smtp_dsn_rw:"+harness.RelayhostFor(gmail.Addr())+"\n", 0o644)
	// The manual's sender_access, "provided this file is specified with a
	// postfix restriction list for check_sender_access", hashed before
	// Postfix's smtpd first opens it.
	access := writeFile(t, dir, "sender_access", "# sender domains blocked\n", 0o644)
	postmapDir := t.TempDir()
	writeFile(t, postmapDir, "main.cf", "", 0o644)
	if out, err := exec.Command(harness.Need(t, "postmap"), "-c", postmapDir, "hash:"+access).CombinedOutput(); err != nil {
		t.Fatalf("postmap: %v\n%s", err, out)
	}
	pf := companionPostfixWith(t, harness.PostfixOptions{
		// The manual's changelog: "bugfix for postfix QueueIDs of >10
		// characters".
		MainCF: []string{"transport_maps = texthash:" + transport, "enable_long_queue_ids = yes",
			"smtpd_sender_restrictions = check_sender_access hash:" + access},
		MasterCF: []string{"smtp_dsn_rw unix - - n - - smtp -o smtp_reply_filter=pcre:" + pcre},
	})
	for _, r := range seeds25Refusals {
		out, code := harness.Swaks(t, "--server", pf.Addr(), "--xclient-addr", r.ip, "--xclient-name", "mx."+strings.SplitN(r.from, "@", 2)[1],
			"--from", r.from, "--to", r.to, "--header", "Subject: test")
		if code != 0 {
			t.Fatalf("swaks for %s: exit %d\n%s", r.to, code, out)
		}
	}
	for _, r := range seeds25Refusals {
		pf.WaitLog(t, "to=<"+r.to+">", 60*time.Second)
	}
	pf.WaitEmpty(t, 60*time.Second)
	out := companionEnforcer(t, pf, dir, "# nobody is exempt\n", "--trusted-upstream", "127.0.0.1")
	for _, r := range seeds25Refusals {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "to=<"+r.to+">") && strings.Contains(line, r.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("postfix-enforcer on Postfix's log printed no %q line for %s (Gmail said %q)\nlog:\n%s\nprinted:\n%s",
				r.want, r.to, r.reply, pf.MailLog(), out)
		}
	}
	if b, _ := os.ReadFile(access); !strings.Contains(string(b), "lowrep.example REJECT") {
		t.Fatalf("sender_access holds:\n%s\nwant lowrep.example REJECT", b)
	}
	// "this ensures that no more emails from this domain will (ever) be
	// accepted": Postfix's smtpd sees the table change and refuses the
	// domain at MAIL FROM (a process that outlived the change serves at
	// most one more session).
	var last string
	refused := waitFor(30*time.Second, func() bool {
		out, code := harness.Swaks(t, "--server", pf.Addr(), "--xclient-addr", "203.0.113.76", "--xclient-name", "mx2.lowrep.example",
			"--from", "erin@lowrep.example", "--to", "u6@gmail.test", "--header", "Subject: again")
		last = out
		return code != 0 && strings.Contains(out, "Sender address rejected")
	})
	if !refused {
		t.Errorf("Postfix with check_sender_access hash:%s took lowrep.example's mail after the block:\n%s", access, last)
	}
}

// TestSeeds25BackupByLocalDelivery: the manual's backup for -f as it sets
// it up, "always_bcc = backup@localhost" and "mail_spool_directory =
// /var/mail", delivered by Postfix's local(8) to the mbox of the user
// backup, and postfix-enforcer -f on that mbox: a message Gmail refuses
// for its From: domain's DMARC policy is sent on, encapsulated, to its
// recipient (the other tests write the mbox themselves).
func TestSeeds25BackupByLocalDelivery(t *testing.T) {
	t.Parallel()
	if _, err := user.Lookup("backup"); err != nil {
		harness.Missing(t, "no user backup for local(8) to deliver to: %v", err)
	}
	dir := t.TempDir()
	spool, err := os.MkdirTemp("", "seeds25-mail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(spool) })
	if err := os.Chmod(spool, 0o1777); err != nil { // as /var/mail, for local(8) running as backup
		t.Fatal(err)
	}
	const dmarc = "550-5.7.26 Unauthenticated email from dmarc.example is not accepted due to domain's\r\n550-5.7.26 DMARC policy. Please contact the administrator of dmarc.example domain if\r\n550-5.7.26 this was a legitimate mail. To learn about the DMARC initiative, go to\r\n550 5.7.26  https://support.google.com/mail/?p=DmarcRejection s7 - gsmtp"
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
			if stage == harness.StageEndOfData && !bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:")) {
				return harness.Response{Reply: dmarc}
			}
			return harness.Response{}
		}})
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{"always_bcc = backup@localhost", "mail_spool_directory = " + spool,
			"mydestination = localhost", "local_transport = local", "local_recipient_maps ="},
		MasterCF: []string{"local unix - n n - - local"},
	})
	out, code := harness.Swaks(t, "--server", pf.Addr(), "--xclient-addr", "198.51.100.77", "--xclient-name", "mail.dmarc.example",
		"--from", "alice@dmarc.example", "--to", "u7@gmail.test", "--header", "Subject: minutes",
		"--header", "From: Alice <alice@dmarc.example>", "--header", "Message-Id: <minutes-1@dmarc.example>",
		"--body", "From the meeting:\nnothing new.\n")
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	pf.WaitLog(t, "status=bounced", 60*time.Second)
	pf.WaitEmpty(t, 60*time.Second)
	mbox := filepath.Join(spool, "backup")
	printed := companionEnforcer(t, pf, dir, "# nobody is exempt\n", "--trusted-upstream", "127.0.0.1", "-f", mbox)
	if !strings.Contains(printed, "encapsulate queue=") || !strings.Contains(printed, "to=<u7@gmail.test>") {
		b, _ := os.ReadFile(mbox)
		t.Fatalf("postfix-enforcer -f %s printed:\n%s\nwant an encapsulation to u7@gmail.test\nmbox:\n%s\nlog:\n%s", mbox, printed, b, pf.MailLog())
	}
	var got *harness.Transaction
	waitFor(60*time.Second, func() bool {
		for _, tx := range gmail.Transactions() {
			if tx.Accepted() && bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:")) {
				got = &tx
				return true
			}
		}
		return false
	})
	if got == nil {
		t.Fatalf("no encapsulated copy reached Gmail; Postfix's log:\n%s", pf.MailLog())
	}
	if to := got.To(); len(to) != 1 || to[0] != "u7@gmail.test" {
		t.Errorf("the encapsulated copy went to %v; want u7@gmail.test", to)
	}
	att := compAttachment(t, got.Data)
	for _, want := range []string{"Message-Id: <minutes-1@dmarc.example>", "From the meeting:", "Subject: minutes"} {
		if !bytes.Contains(att, []byte(want)) {
			t.Errorf("the attached original lacks %q:\n%s", want, att)
		}
	}
	for _, unwanted := range []string{"Delivered-To:", "X-Original-To:", "Return-Path:", ">From the meeting"} {
		if bytes.Contains(att, []byte(unwanted)) {
			t.Errorf("the attached original holds local(8)'s %q:\n%s", unwanted, att)
		}
	}
}
