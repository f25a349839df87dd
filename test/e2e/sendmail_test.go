package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// sendmailNames links the binary as sendmail and mailq in a directory of
// their own, as "make install-sendmail" does.
func sendmailNames(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"sendmail", "mailq", "newaliases"} {
		if err := os.Symlink(harness.Binary(t), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSendmailLink invokes the binary through links named sendmail and
// mailq, with the invocations cron, mail(1) and PHP use, against a relay
// forwarding to smtp-sink: -t -i -f -F -oem submits (adding the From field
// -F names, keeping a lone "." line), prints nothing and the sink gets the
// message; -bs takes an SMTP session on stdin/stdout; mailq and -bp list
// the spool; -q runs it; newaliases does nothing successfully; a bad
// option is EX_USAGE.
func TestSendmailLink(t *testing.T) {
	names := sendmailNames(t)
	sendmail, mailq := filepath.Join(names, "sendmail"), filepath.Join(names, "mailq")
	sink := harness.StartSink(t, harness.SinkOptions{})
	spool := t.TempDir()
	conf := filepath.Join(t.TempDir(), "relaykeeper.toml")
	checks := filepath.Join(t.TempDir(), "header_checks")
	if err := os.WriteFile(checks, []byte("/^Subject: refuse me/ REJECT not this one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[spool]\ndir = %q\n[policy]\nheader_checks = %q\n", spool, "regexp:"+checks)), 0o644); err != nil {
		t.Fatal(err)
	}
	port := harness.FreePort(t)
	harness.Start(t, harness.Binary(t), "--as-server", "--log", "--forward-on-disconnect",
		"--interface", fmt.Sprintf("127.0.0.1:%d", port), "--spool-dir", spool, "--forward-to", sink.Addr())
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	// sendmail signals the relay through the spool's pid file, written
	// just after the listener opens.
	waitForText(t, filepath.Join(spool, ".relaykeeper.pid"), "\n")

	msg := "To: You <you@example.com>\nSubject: from cron\n\nfirst line\n.\nlast line\n"
	out, errOut, code := runBinary(t, sendmail, msg, "-C", conf, "-t", "-i", "-f", "me@example.org", "-F", "Jo Bloggs", "-oem")
	if code != 0 || out != "" {
		t.Fatalf("sendmail -t -i -f -F -oem = exit %d, stdout %q, stderr %q; want 0 and nothing printed", code, out, errOut)
	}
	if n := sink.WaitCount(t, 1, 15*time.Second); n != 1 {
		t.Fatalf("sink got %d messages; want 1", n)
	}
	m := sink.Messages()[0]
	if m.From != "me@example.org" || strings.Join(m.To, ",") != "you@example.com" {
		t.Errorf("envelope = %s -> %v; want me@example.org -> [you@example.com]", m.From, m.To)
	}
	for _, want := range []string{"From: Jo Bloggs <me@example.org>\n", "\nfirst line\n.\nlast line\n"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, m.Data)
		}
	}

	// -bs goes through the relay's own SMTP server: its header checks
	// apply.
	session := "EHLO cron.example\r\nMAIL FROM:<bs@example.org>\r\nRCPT TO:<them@example.net>\r\nDATA\r\nSubject: refuse me\r\n\r\nno\r\n.\r\n" +
		"MAIL FROM:<bs@example.org>\r\nRCPT TO:<them@example.net>\r\nDATA\r\nSubject: over -bs\r\n\r\nhello\r\n.\r\nQUIT\r\n"
	out, errOut, code = runBinary(t, sendmail, session, "-C", conf, "-bs")
	if code != 0 || !strings.HasPrefix(out, "220 ") || !strings.Contains(out, "\r\n550 5.7.1 not this one\r\n") ||
		!strings.Contains(out, "\r\n250 2.0.0 OK: queued as ") || !strings.Contains(out, "\r\n221 ") {
		t.Fatalf("sendmail -bs = exit %d, stdout %q, stderr %q; want a 220 greeting, the header check's 550, a queued reply and 221", code, out, errOut)
	}
	if n := sink.WaitCount(t, 2, 15*time.Second); n != 2 {
		t.Fatalf("sink got %d messages after -bs; want 2", n)
	}

	// A spool no relay runs on: the message stays, mailq and -bp show it.
	idle := t.TempDir()
	idleConf := filepath.Join(t.TempDir(), "idle.toml")
	if err := os.WriteFile(idleConf, []byte(fmt.Sprintf("[spool]\ndir = %q\n", idle)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runBinary(t, sendmail, "Subject: kept\n\nx\n", "-C", idleConf, "-oi", "-f", "", "kept@example.com"); code != 0 {
		t.Fatalf("sendmail -oi -f '' = exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{{"-C", idleConf}, {"-C", idleConf, "-bp"}} {
		bin := mailq
		if len(args) == 3 {
			bin = sendmail
		}
		out, errOut, code := runBinary(t, bin, "", args...)
		if code != 0 || !strings.Contains(out, "<kept@example.com>") || !strings.Contains(out, "1 request") {
			t.Errorf("%s %v = exit %d, %q, %q; want the queued message listed", filepath.Base(bin), args, code, out, errOut)
		}
	}
	if out, errOut, code := runBinary(t, sendmail, "", "-C", idleConf, "-q"); code != 0 || out != "" {
		t.Errorf("sendmail -q = exit %d, %q, %q; want 0 and quiet", code, out, errOut)
	}
	if _, _, code := runBinary(t, filepath.Join(names, "newaliases"), ""); code != 0 {
		t.Errorf("newaliases = exit %d; want 0", code)
	}
	if _, errOut, code := runBinary(t, sendmail, "", "-Z", "x@example.com"); code != 64 || !strings.Contains(errOut, "unknown option -Z") {
		t.Errorf("sendmail -Z = exit %d, %q; want 64 and the option named", code, errOut)
	}
	if _, errOut, code := runBinary(t, sendmail, ""); code != 64 || !strings.Contains(errOut, "no recipients") {
		t.Errorf("sendmail with no recipients = exit %d, %q; want 64", code, errOut)
	}
}

// TestSendmailCanonical: mail handed to the sendmail command is mapped as
// Postfix's pickup mail is (cleanup maps it): the envelope sender and
// recipients, and the header's addresses, by the config's canonical maps
// and masquerading, so that cron's root@web1.example.com mail reaches a
// provider that takes only its verified sender as alerts@example.com.
func TestSendmailCanonical(t *testing.T) {
	t.Parallel()
	names := sendmailNames(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	dir := t.TempDir()
	canon := writeFile(t, dir, "sender_canonical", "root@web1.example.com alerts@example.com\n", 0o644)
	conf := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf("[spool]\ndir = %q\n[rewrite]\nsender_canonical_maps = [%q]\nmasquerade_domains = [\"example.com\"]\n",
		spool, "hash:"+canon), 0o644)
	startSendmailRelay(t, conf, up.Addr())

	msg := "From: Cron Daemon <root@web1.example.com>\nTo: ops@db2.example.com\nSubject: cron\n\nhello\n"
	if out, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), msg, "-C", conf, "-t", "-i", "-f", "root@web1.example.com"); code != 0 {
		t.Fatalf("sendmail = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
	if tx.MailFrom != "alerts@example.com" || len(tx.Rcpts) != 1 || tx.Rcpts[0].Addr != "ops@db2.example.com" {
		t.Errorf("envelope %q -> %+v; want alerts@example.com -> ops@db2.example.com", tx.MailFrom, tx.Rcpts)
	}
	data := string(tx.Data)
	for _, want := range []string{"From: Cron Daemon <alerts@example.com>\r\n", "To: ops@example.com\r\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("message upstream lacks %q:\n%s", want, data)
		}
	}
}

// startSendmailRelay starts the relay the sendmail command hands mail to:
// its configuration conf, forwarding to upstream as mail arrives.
func startSendmailRelay(t *testing.T, conf, upstream string) {
	t.Helper()
	port := harness.FreePort(t)
	harness.Start(t, harness.Binary(t), "--as-server", "--forward-on-disconnect", "--poll", "1", "--config", conf,
		"--interface", fmt.Sprintf("127.0.0.1:%d", port), "--forward-to", upstream)
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
}

// TestSendmailCronToRoot: cron's own invocation, "sendmail -FCronDaemon
// -i -B8BITMIME -oem root" (Debian's cron mails the job's output to its
// user, or MAILTO's), was refused with exit 64 ("recipient "root": no
// domain"), so every cron mail was lost. As in Postfix, an address without
// a domain gets myorigin's ([rewrite] myorigin), else the host's
// (--domain), and is mapped on from there; the default sender too.
func TestSendmailCronToRoot(t *testing.T) {
	t.Parallel()
	names := sendmailNames(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	dir := t.TempDir()
	conf := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf("domain = \"web1.example.com\"\n[spool]\ndir = %q\n[rewrite]\nmyorigin = \"example.com\"\n"+
		"recipient_canonical_maps = [\"inline:{ root@example.com=ops@example.net }\"]\n", spool), 0o644)
	startSendmailRelay(t, conf, up.Addr())
	// Debian's cron writes these fields itself; Gmail refuses a From
	// without a domain.
	msg := "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@web1> run-parts /etc/cron.daily\n\nsome output\n"
	if out, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), msg, "-C", conf, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"); code != 0 {
		t.Fatalf("sendmail root = exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}
	if out, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), msg, "-C", conf, "-f", "backup", "admin"); code != 0 {
		t.Fatalf("sendmail -f backup admin = exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}
	// unattended-upgrades, mdadm and logwatch: -t with "To: root".
	if out, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), "To: root\nSubject: upgrades\n\nlog\n", "-C", conf, "-oi", "-t"); code != 0 {
		t.Fatalf("sendmail -oi -t (To: root) = exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}
	got := map[string]string{}
	var cronData string
	toOps := 0
	for _, tx := range up.WaitTransactions(t, 3, 15*time.Second) {
		for _, r := range tx.Rcpts {
			got[r.Addr] = tx.MailFrom
			if r.Addr == "ops@example.net" {
				toOps++
			}
		}
		if strings.Contains(string(tx.Data), "run-parts") && tx.Rcpts[0].Addr == "ops@example.net" {
			cronData = string(tx.Data)
		}
	}
	if !strings.Contains(cronData, "\r\nFrom: root@example.com (Cron Daemon)\r\n") || !strings.Contains(cronData, "\r\nTo: ops@example.net\r\n") {
		t.Errorf("cron's message left with its header addresses unqualified (myorigin, then the canonical map):\n%s", cronData)
	}
	if toOps != 2 {
		t.Errorf("ops@example.net (root) got %d messages; want 2, cron's and the -t one", toOps)
	}
	if _, ok := got["ops@example.net"]; !ok || got["admin@example.com"] != "backup@example.com" {
		t.Errorf("upstream got %v; want ops@example.net (root, mapped) and admin@example.com from backup@example.com", got)
	}
	if from := got["ops@example.net"]; !strings.HasSuffix(from, "@example.com") {
		t.Errorf("cron's default sender %q; want USER@example.com (myorigin)", from)
	}
}
