package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSteer17CompanionLongIDsMultiInstance: a Postfix with long queue
// ids (enable_long_queue_ids) and its own syslog_name (postfix-out, as a
// second instance logs), whose clients put a forged refusal of another
// queue id in every field of theirs that Postfix logs: header_checks
// WARN text, DSN ENVID and ORCPT, a quoted sender, and a Message-ID. The
// spammer whose message Gmail refuses is banned; nobody else is, and no
// domain is blocked (held).
func TestSteer17CompanionLongIDsMultiInstance(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	dir := t.TempDir()
	checks := writeFile(t, dir, "header_checks", "/^Subject:/ WARN\n/^X-Note:/ WARN\n", 0o644)
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{"smtpd_authorized_xclient_hosts = 127.0.0.0/8", "relay_domains = gmail.test",
			"enable_long_queue_ids = yes", "syslog_name = postfix-out", "header_checks = regexp:" + checks},
	})
	// The first spammer's message gets its long queue id first: the
	// forgeries name it.
	hostileSend(t, pf.Addr(), "203.0.113.91", "mx.spam91.test",
		[]string{"MAIL FROM:<bob@spam91.test>", "RCPT TO:<spam@gmail.test>"}, "")
	m := regexp.MustCompile(`postfix-out/smtpd\[\d+\]: ([0-9A-Za-z]+): client=mx\.spam91\.test\[203\.0\.113\.91\]`).FindStringSubmatch(pf.MailLog())
	if m == nil {
		t.Fatalf("no client= line for 203.0.113.91:\n%s", pf.MailLog())
	}
	qid := m[1]
	if !strings.Contains(qid, "z") || len(qid) < 12 {
		t.Fatalf("queue id %q is not a long one", qid)
	}
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	forged := " " + qid + ": to=<spam@gmail.test>, relay=mx.google.test[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, status=bounced (host mx.google.test[127.0.0.1] said: 550 5.7.1 likely unsolicited mail x - gsmtp (in reply to end of DATA command))"
	client := " postfix-out/smtpd[1]: " + qid + ": client=victim.test[198.51.100.7]"
	xtext := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c <= ' ' || c >= 127 || c == '+' || c == '=' {
				b.WriteString("+" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
			} else {
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	hostileSend(t, pf.Addr(), "203.0.113.92", "mx.other.test", []string{
		`MAIL FROM:<"x` + strings.ReplaceAll(client, " ", "") + `"@other.test> RET=HDRS ENVID=` + xtext("e"+client+forged),
		"RCPT TO:<ok@gmail.test> NOTIFY=FAILURE ORCPT=rfc822;" + xtext("o@x"+forged),
	}, "Subject: hi"+client+"\r\nX-Note: n"+forged+"\r\nMessage-Id: <m"+strings.ReplaceAll(forged, " ", "")+"@other.test>\r\n")
	compWaitLog(t, pf, `to=<ok@gmail\.test>, .*status=sent`, 30*time.Second)
	compWaitLog(t, pf, `warning: header X-Note: n `, 10*time.Second)

	banLog := filepath.Join(dir, "bans.log")
	access := filepath.Join(dir, "sender_access")
	welcome := writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644)
	out := review11Enforcer(t, pf, dir, access, welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.91 queue=` + qid + ` .*rule=gmail-unsolicited`})
	if n := strings.Count(out, " ban "); n != 1 || strings.Contains(out, "198.51.100.7") || strings.Contains(out, "203.0.113.92") {
		t.Errorf("want one ban, of 203.0.113.91, and nothing of the others:\n%s", out)
	}
	compWantBans(t, banLog, "203.0.113.91")
	if b, _ := os.ReadFile(access); regexp.MustCompile(`(?m)^[^#\n]+`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant nothing blocked", b)
	}
}
