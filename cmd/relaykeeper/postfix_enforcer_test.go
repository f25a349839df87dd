package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/companion"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/srs"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Gmail's replies as Postfix logs them: the lines joined, prefixes kept.
const (
	replyUnsolicited = "550-5.7.1 [192.0.2.10      12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. Please visit 550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError 550 5.7.1 for more information. a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp"
	replyDomain      = "550-5.7.1 [192.0.2.10 12] Our system has detected that this message is likely 550-5.7.1 suspicious due to the very low reputation of the sending domain. To best 550-5.7.1 protect our users from spam, the message has been blocked. Please visit 550 5.7.1  https://support.google.com/mail/answer/188131 for more information. x - gsmtp"
	replyDMARC       = "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's 550-5.7.26 DMARC policy. Please contact the administrator of example.org domain 550-5.7.26 if this was a legitimate mail. To learn about the DMARC initiative, go to 550 5.7.26  https://support.google.com/mail/?p=DmarcRejection d2e1a72f - gsmtp"
	replyNoSuchUser  = "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550 5.1.1 unnecessary spaces. x - gsmtp"
	replyRate        = "421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 abc%d - gsmtp"
	replyOdd         = "554 5.7.99 Something nobody has seen yet. x - gsmtp"
)

// pfMessage writes the log lines of one message from client through amavis
// (queue ids q1 then q2) to Gmail, refused with reply.
func pfMessage(q1, q2, clientName, clientIP, from, to, msgid, status, reply string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/smtpd[100]: %s: client=%s[%s]\n", q1, clientName, clientIP)
	fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/cleanup[101]: %s: message-id=<%s>\n", q1, msgid)
	fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/qmgr[102]: %s: from=<%s>, size=900, nrcpt=1 (queue active)\n", q1, from)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 postfix/smtpd[103]: %s: client=localhost[127.0.0.1]\n", q2)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 postfix/cleanup[101]: %s: message-id=<%s>\n", q2, msgid)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 postfix/qmgr[102]: %s: from=<%s>, size=1000, nrcpt=1 (queue active)\n", q2, from)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 amavis[200]: (00200-01) Passed CLEAN {RelayedInbound}, [%s]:40000 [%s] <%s> -> <%s>, Queue-ID: %s, Message-ID: <%s>, mail_id: x, Hits: 0, size: 900, queued_as: %s, 100 ms\n", clientIP, clientIP, from, to, q1, msgid, q2)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 postfix/smtp[104]: %s: to=<%s>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as %s)\n", q1, to, q2)
	fmt.Fprintf(&b, "Nov 22 10:00:02 mx1 postfix/qmgr[102]: %s: removed\n", q1)
	b.WriteString(pfDelivery(q2, to, status, reply))
	return b.String()
}

func pfDelivery(q, to, status, reply string) string {
	dsn := regexp.MustCompile(`^\d{3}[- ](\d\.\d+\.\d+)`).FindStringSubmatch(reply)[1]
	return fmt.Sprintf("Nov 22 10:00:03 mx1 postfix/smtp[105]: %s: to=<%s>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=%s, status=%s (host gmail-smtp-in.l.google.com[142.250.102.27] said: %s (in reply to end of DATA command))\n", q, to, dsn, status, reply)
}

type pfeFixture struct {
	dir, log, state, access, welcome, bans, backup string
	fake                                           *harness.FakeSMTP
}

func newPFEFixture(t *testing.T) *pfeFixture {
	dir := t.TempDir()
	f := &pfeFixture{
		dir: dir, log: filepath.Join(dir, "mail.log"), state: filepath.Join(dir, "state"),
		access: filepath.Join(dir, "sender_access"), welcome: filepath.Join(dir, "welcomelist"),
		bans: filepath.Join(dir, "bans.log"), backup: filepath.Join(dir, "backup"),
		fake: harness.NewFakeSMTP(t, harness.Script{}),
	}
	os.WriteFile(f.welcome, []byte("127.0.0.0/8\n198.51.100.9   # a partner's server\n"), 0o644)
	return f
}

func (f *pfeFixture) run(t *testing.T, extra ...string) (status int, stdout, stderr string) {
	t.Helper()
	args := append([]string{"--once", "--log", f.log, "--state", f.state, "--sender-access", f.access,
		"--welcomelist", f.welcome, "--ban-log", f.bans, "--ban-delay", "0", "--smtp", f.fake.Addr(),
		"--sender", "postmaster@relay.test", "-f", f.backup}, extra...)
	var out, errb bytes.Buffer
	status = runPostfixEnforcer(args, strings.NewReader(""), &out, &errb)
	return status, out.String(), errb.String()
}

func events(t *testing.T, stdout string) []*maillog.Entry {
	t.Helper()
	var es []*maillog.Entry
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l == "" {
			continue
		}
		e, err := maillog.Parse(l)
		if err != nil {
			t.Fatalf("stdout line %q: %v", l, err)
		}
		es = append(es, e)
	}
	return es
}

func TestPostfixEnforcerActions(t *testing.T) {
	f := newPFEFixture(t)
	original := "From: Carol <carol@example.org>\nTo: dave@gmail.test\nSubject: hello\nMessage-ID: <dmarc-1@example.org>\n\nhi\n"
	partner := "From: eve@partner.example\nMessage-ID: <partner-1@partner.example>\n\nbuy\n"
	// The always_bcc copies carry the Received field Postfix's smtpd
	// wrote with each message's first queue id.
	os.WriteFile(f.backup, []byte("From carol@example.org  Sun Nov 22 10:00:00 2026\nReturn-Path: <carol@example.org>\nDelivered-To: backup@localhost\n"+
		"Received: from mx.example.org (mx.example.org [203.0.113.9])\n\tby relay.test (Postfix) with ESMTP id 4A0003ABC3; Sun, 22 Nov 2026 10:00:00 +0000\n"+original+"\n"+
		"From eve@partner.example  Sun Nov 22 10:00:00 2026\n"+
		"Received: from partner.example (partner.example [198.51.100.9])\n\tby relay.test (Postfix) with ESMTP id 4A0004ABC4; Sun, 22 Nov 2026 10:00:00 +0000\n"+partner+"\n"), 0o600)
	log := pfMessage("4A0001ABC1", "4B0001ABC1", "mx.spam.test", "203.0.113.7", "bob@spam.test", "u1@gmail.test", "spam-1@spam.test", "bounced", replyUnsolicited) +
		pfMessage("4A0002ABC2", "4B0002ABC2", "mail.example.com", "203.0.113.8", "news@example.com", "u2@gmail.test", "dom-1@example.com", "bounced", replyDomain) +
		pfMessage("4A0003ABC3", "4B0003ABC3", "mx.example.org", "203.0.113.9", "carol@example.org", "dave@gmail.test", "dmarc-1@example.org", "bounced", replyDMARC) +
		pfMessage("4A0004ABC4", "4B0004ABC4", "partner.example", "198.51.100.9", "eve@partner.example", "u4@gmail.test", "partner-1@partner.example", "bounced", replyUnsolicited) +
		pfMessage("4A0005ABC5", "4B0005ABC5", "mx.other.test", "203.0.113.10", "x@other.test", "gone@gmail.test", "x-1@other.test", "bounced", replyNoSuchUser) +
		pfMessage("4A0006ABC6", "4B0006ABC6", "mx.rate.test", "203.0.113.11", "y@rate.test", "u6@gmail.test", "y-1@rate.test", "deferred", fmt.Sprintf(replyRate, 1)) +
		pfDelivery("4B0006ABC6", "u6@gmail.test", "deferred", fmt.Sprintf(replyRate, 2)) +
		pfMessage("4A0007ABC7", "4B0007ABC7", "mx.odd.test", "203.0.113.12", "z@odd.test", "u7@gmail.test", "z-1@odd.test", "bounced", replyOdd)
	os.WriteFile(f.log, []byte(log), 0o640)

	status, stdout, stderr := f.run(t, "-m", "admin@relay.test")
	if status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr)
	}
	type act struct{ event, key, value string }
	var got []act
	for _, e := range events(t, stdout) {
		k := map[string]string{"ban": "client", "block-domain": "domain", "encapsulate": "to", "report": "queue"}[e.Event]
		got = append(got, act{e.Event, k, e.Get(k)})
	}
	want := []act{
		{"ban", "client", "203.0.113.7"},
		{"block-domain", "domain", "example.com"},
		{"encapsulate", "to", "<dave@gmail.test>"},
		{"encapsulate", "to", "<u4@gmail.test>"}, // welcomelisted: spared
		{"ban", "client", "203.0.113.11"},        // the retry is not acted on again
		{"report", "queue", "4B0007ABC7"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("actions = %v; want %v\nstdout:\n%s\nstderr:\n%s", got, want, stdout, stderr)
	}

	bans, _ := os.ReadFile(f.bans)
	banRE := regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ relay-enforcer\[\d+\]: bannable .* (\S+)$`)
	var banned []string
	for _, m := range banRE.FindAllStringSubmatch(string(bans), -1) {
		banned = append(banned, m[1])
	}
	if fmt.Sprint(banned) != "[203.0.113.7 203.0.113.11]" {
		t.Errorf("ban log:\n%s\nwant bannable lines for 203.0.113.7 and 203.0.113.11", bans)
	}
	access, _ := os.ReadFile(f.access)
	if !regexp.MustCompile(`(?m)^# .*relaykeeper.*\nexample\.com\s+REJECT`).Match(access) {
		t.Errorf("sender_access:\n%s\nwant a comment and example.com REJECT", access)
	}

	// The fake upstream got: the encapsulated DMARC message, the welcomed
	// client's, and a report for each action and the odd refusal.
	txs := f.fake.WaitTransactions(t, 8, 5*time.Second)
	var enc, reports int
	for _, tx := range txs {
		switch {
		case strings.Contains(string(tx.Data), "X-Relaykeeper-Encapsulated:"):
			enc++
			if tx.To()[0] == "dave@gmail.test" && !bytes.Contains(tx.Data, []byte(strings.ReplaceAll(original, "\n", "\r\n"))) {
				t.Errorf("encapsulated message lacks the original, byte for byte:\n%s", tx.Data)
			}
		case tx.To()[0] == "admin@relay.test":
			reports++
		}
		if tx.MailFrom != "postmaster@relay.test" {
			t.Errorf("sent from <%s>; want <postmaster@relay.test>", tx.MailFrom)
		}
	}
	if enc != 2 || reports != 6 {
		t.Errorf("sent %d encapsulated messages and %d reports; want 2 and 6", enc, reports)
	}

	// Again, and with the retry's deferral appended: nothing is done twice.
	os.WriteFile(f.log, []byte(log+pfDelivery("4B0006ABC6", "u6@gmail.test", "deferred", fmt.Sprintf(replyRate, 3))), 0o640)
	status, stdout, stderr = f.run(t)
	if status != 0 || strings.TrimSpace(stdout) != "" {
		t.Errorf("second run: status %d, stdout %q; want 0 and nothing\nstderr:\n%s", status, stdout, stderr)
	}
	if b, _ := os.ReadFile(f.bans); !bytes.Equal(b, bans) {
		t.Errorf("second run changed the ban log:\n%s", b)
	}
}

func TestPostfixEnforcerTestMode(t *testing.T) {
	f := newPFEFixture(t)
	log := pfMessage("4A0001ABC1", "4B0001ABC1", "mx.spam.test", "203.0.113.7", "bob@spam.test", "u1@gmail.test", "spam-1@spam.test", "bounced", replyUnsolicited) +
		pfMessage("4A0002ABC2", "4B0002ABC2", "mail.example.com", "203.0.113.8", "news@example.com", "u2@gmail.test", "dom-1@example.com", "bounced", replyDomain)
	os.WriteFile(f.log, []byte(log), 0o640)
	for i := 0; i < 2; i++ {
		status, stdout, stderr := f.run(t, "-t", "-m", "admin@relay.test")
		if status != 0 {
			t.Fatalf("status %d: %s", status, stderr)
		}
		var names []string
		for _, e := range events(t, stdout) {
			names = append(names, e.Event)
		}
		if fmt.Sprint(names) != "[would-ban would-block-domain]" {
			t.Errorf("run %d: events %v; want [would-ban would-block-domain]\n%s", i, names, stdout)
		}
	}
	for _, p := range []string{f.state, f.bans, f.access} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("test mode wrote %s", p)
		}
	}
	if n := len(f.fake.Transactions()); n != 0 {
		t.Errorf("test mode sent %d messages", n)
	}
}

func TestPostfixEnforcerSwitches(t *testing.T) {
	f := newPFEFixture(t)
	for _, args := range [][]string{{"-a", "-n"}, {"-q", "-v"}, {"--smtp", "nohost"}, {"--upstream", "("}, {"extra"}} {
		if status, _, stderr := f.run(t, args...); status != exitUsage || stderr == "" {
			t.Errorf("postfix-enforcer %q: status %d, stderr %q; want %d and a message", args, status, stderr, exitUsage)
		}
	}
	if status, _, stderr := f.run(t, "-s"); status != 0 || !strings.Contains(stderr, "no other instance") {
		t.Errorf("-s with nothing running: status %d, stderr %q", status, stderr)
	}
	var out bytes.Buffer
	if status := runPostfixEnforcer([]string{"--help"}, nil, &out, &out); status != 0 || !strings.Contains(out.String(), "-f BACKUP") {
		t.Errorf("--help: status %d, %q", status, out.String())
	}
	// Another instance holds the lock.
	unlock, err := companion.LockInstance(f.state + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.log, nil, 0o640)
	if status, _, stderr := f.run(t); status != exitFailure || !strings.Contains(stderr, "another postfix-enforcer") {
		t.Errorf("while locked: status %d, stderr %q", status, stderr)
	}
	unlock()
}

// TestPostfixEnforcerSRS: with postsrsd, Postfix logs forwarded senders as
// SRS addresses of the relay's own domain. Without the secret such a
// sender's domain is the relay's, which is never blocked (reported); with
// --srs-secret a sender that verifies is read back to its own domain, and
// one that does not (forged) is not.
func TestPostfixEnforcerSRS(t *testing.T) {
	f := newPFEFixture(t)
	secret := filepath.Join(f.dir, "postsrsd.secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	rw, err := srs.New("relay.test", []string{"s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	good := rw.Forward("news@example.com")
	if !strings.HasPrefix(good, "SRS0=") || !strings.HasSuffix(good, "@relay.test") {
		t.Fatalf("Forward = %q; want an SRS0 address of relay.test", good)
	}
	forged := "SRS0=abcd=XY=gmail.com=bob@relay.test"
	log := pfMessage("4A0001ABC1", "4B0001ABC1", "mx.a.test", "203.0.113.8", good, "u1@gmail.test", "d-1@a.test", "bounced", replyDomain) +
		pfMessage("4A0002ABC2", "4B0002ABC2", "mx.b.test", "203.0.113.9", forged, "u2@gmail.test", "d-2@b.test", "bounced", replyDomain)
	os.WriteFile(f.log, []byte(log), 0o640)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "[would-report: why=\"the domain relay.test is never blocked\" would-report: why=\"the domain relay.test is never blocked\"]"},
		{[]string{"--srs-secret", secret}, "[would-block-domain:example.com would-report: why=\"the domain relay.test is never blocked\"]"},
	} {
		status, stdout, stderr := f.run(t, append([]string{"-t"}, c.args...)...)
		if status != 0 {
			t.Fatalf("%q: status %d: %s", c.args, status, stderr)
		}
		var got []string
		for _, e := range events(t, stdout) {
			s := e.Event + ":" + e.Get("domain")
			if e.Get("why") != "" {
				s += " why=" + strconv.Quote(e.Get("why"))
			}
			got = append(got, s)
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("%q: actions %v; want %s\n%s", c.args, got, c.want, stdout)
		}
	}
}
