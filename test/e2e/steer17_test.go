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
	pf, dir := steer17Postfix(t, "header_checks", "/^Subject:/ WARN\n/^X-Note:/ WARN\n", func(checks string) []string {
		return []string{"enable_long_queue_ids = yes", "syslog_name = postfix-out", "header_checks = regexp:" + checks}
	})
	// The first spammer's message gets its long queue id first: the
	// forgeries name it.
	hostileSend(t, pf.Addr(), "203.0.113.91", "mx.spam91.test",
		[]string{"MAIL FROM:<bob@spam91.test>", "RCPT TO:<spam@gmail.test>"}, "")
	clientRE := `postfix-out/smtpd\[\d+\]: ([0-9A-Za-z]+): client=mx\.spam91\.test\[203\.0\.113\.91\]`
	compWaitLog(t, pf, clientRE, 10*time.Second) // postlogd writes it a little later
	m := regexp.MustCompile(clientRE).FindStringSubmatch(pf.MailLog())
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

	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.91 prefix=\S+ queue=` + qid + ` .*rule=gmail-unsolicited`})
	if n := strings.Count(out, " ban "); n != 1 || strings.Contains(out, "198.51.100.7") || strings.Contains(out, "203.0.113.92") {
		t.Errorf("want one ban, of 203.0.113.91, and nothing of the others:\n%s", out)
	}
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.91")
	if b, _ := os.ReadFile(filepath.Join(dir, "sender_access")); regexp.MustCompile(`(?m)^[^#\n]+`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant nothing blocked", b)
	}
}

// TestSteer17CompanionAmavisLog: amavis lines that carry the sender's
// text, fed to the built binary as a mail log. A Subject holding
// ", queued_as: ID" (amavis 2.7's template logs it after queued_as) tied
// another client's re-injected copy to the sender, and Gmail's refusal of
// that client's spam banned the sender instead; amavis's guess from a
// forged Received field, written alone when amavis does not know the
// client, was banned when Postfix's own line for the queue id was not in
// the log. Each refusal now bans its own client, and the guess nobody.
func TestSteer17CompanionAmavisLog(t *testing.T) {
	t.Parallel()
	subject, err := os.ReadFile(filepath.Join("..", "..", "internal", "postfixlog", "testdata", "hostile", "amavis-subject-queued-as.log"))
	if err != nil {
		t.Fatal(err)
	}
	guess := "Dec  6 14:00:02 mx1 postfix/smtpd[2201]: 6E1F2A9811A: client=localhost[127.0.0.1]\n" +
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-09) Passed CLEAN {RelayedInbound}, [198.51.100.9] <bob@attacker.example> -> <erin@gmail.com>, Queue-ID: 3B1A2985117, Message-ID: <a2@attacker.example>, mail_id: c, Hits: -0.1, size: 1234, queued_as: 6E1F2A9811A, 812 ms\n" +
		"Dec  6 14:00:04 mx1 postfix/smtp[2113]: 6E1F2A9811A: to=<erin@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 likely unsolicited mail. 550 5.7.1 z - gsmtp (in reply to end of DATA command))\n"
	dir := t.TempDir()
	mailLog := writeFile(t, dir, "mail.log", string(subject)+guess, 0o644)
	banLog := filepath.Join(dir, "bans.log")
	out := enforcerOnce(t, nil, enforcerArgs(mailLog, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
		writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9")...)
	compWantLines(t, out, []string{
		`^\S+ ban client=198\.51\.100\.7 prefix=\S+ queue=7F1A2B3C4D5 `,
		`^\S+ ban client=203\.0\.113\.66 prefix=\S+ queue=5D0E1985119 `,
		`^\S+ report queue=6E1F2A9811A .*why="the client is unknown"`,
	})
	if strings.Contains(out, "198.51.100.9") {
		t.Errorf("amavis's guess 198.51.100.9 was acted on:\n%s", out)
	}
	compWantBans(t, banLog, "198.51.100.7", "203.0.113.66")
}

// TestSteer17CompanionLocalForward: mail for a local alias that forwards
// to Gmail (aliases, .forward: the common way to send a domain's mail on
// to Gmail) is re-submitted by local(8) under a new queue id, "status=sent
// (forwarded as ID)", whose first line is cleanup's: Gmail's refusal of a
// spammer's message sent to the alias had an unknown client, and the ban
// was only reported. Any spammer escaped by writing to the alias. The
// forwarded copy is tied back to the message local(8) delivered, as a
// content filter's re-injection is, and the spammer is banned.
func TestSteer17CompanionLocalForward(t *testing.T) {
	t.Parallel()
	pf, dir := steer17Postfix(t, "aliases.regexp", "/^fwd$/ spam@gmail.test\n", func(aliases string) []string {
		return []string{"mydestination = local.test", "alias_maps = regexp:" + aliases, "alias_database =",
			"local_recipient_maps =", "local_transport = local"}
	}, "local unix - n n - - local")
	hostileSend(t, pf.Addr(), "203.0.113.93", "mx.spam93.test",
		[]string{"MAIL FROM:<bob@spam93.test>", "RCPT TO:<fwd@local.test>"}, "")
	compWaitLog(t, pf, `status=sent \(forwarded as [0-9A-Za-z]+\)`, 30*time.Second)
	compWaitLog(t, pf, `to=<spam@gmail\.test>, orig_to=<fwd@local\.test>, .*status=bounced`, 30*time.Second)

	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.93 .*rule=gmail-unsolicited`})
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.93")
}

// steer17Postfix starts a fake Gmail that refuses spam@gmail.test's mail
// as likely unsolicited, and a private Postfix relaying gmail.test to it
// from XCLIENT clients, with the table file name holding text in a
// temporary directory (returned), mainCF(the table's path) added to
// main.cf and masterCF to master.cf.
func steer17Postfix(t *testing.T, name, text string, mainCF func(table string) []string, masterCF ...string) (*harness.Postfix, string) {
	t.Helper()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	dir := t.TempDir()
	table := writeFile(t, dir, name, text, 0o644)
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF:    mainCF(table),
		MasterCF:  masterCF,
	})
	return pf, dir
}
