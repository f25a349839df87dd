package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gmail24Log writes Postfix's lines for one message: its client, its
// message-id, qmgr's line and one delivery line with detail, then removed.
type gmail24Log struct {
	b    strings.Builder
	mbox strings.Builder
	n    int
}

const gmail24MX = "gmail-smtp-in.l.google.com[142.250.102.27]"

func (l *gmail24Log) line(format string, args ...any) {
	l.n++
	fmt.Fprintf(&l.b, "Dec  7 10:%02d:%02d mx postfix/", (l.n/60)%60, l.n%60)
	fmt.Fprintf(&l.b, format, args...)
	l.b.WriteByte('\n')
}

// message logs a message of client ip from sender to rcpt, answered with
// detail (what follows "status=STATUS "), and stores its backup copy.
func (l *gmail24Log) message(qid, ip, from, rcpt, status, dsn, detail string) string {
	l.line("smtpd[100]: %s: client=c-%s.test[%s]", qid, strings.ReplaceAll(ip, ".", "-"), ip)
	l.line("cleanup[101]: %s: message-id=<%s@g24.test>", qid, qid)
	l.line("qmgr[102]: %s: from=<%s>, size=400, nrcpt=1 (queue active)", qid, from)
	l.line("smtp[103]: %s: to=<%s>, relay=%s:25, delay=1, delays=0/0/0/1, dsn=%s, status=%s %s", qid, rcpt, gmail24MX, dsn, status, detail)
	if status != "deferred" {
		l.line("qmgr[102]: %s: removed", qid)
	}
	msg := "Received: from c.test (c.test [" + ip + "])\n\tby mx.relay.test (Postfix) with ESMTP id " + qid + "\n\tfor <" + rcpt + ">; Mon,  7 Dec 2026 10:00:00 +0000 (UTC)\n" +
		"From: \"Alice Example\" <" + from + ">\nTo: <" + rcpt + ">\nSubject: case " + qid + "\nMessage-ID: <" + qid + "@g24.test>\n\nBody of " + qid + ".\n"
	fmt.Fprintf(&l.mbox, "From %s  Mon Dec  7 10:00:00 2026\nReturn-Path: <%s>\nDelivered-To: backup@relay.test\n%s\n", from, from, msg)
	return msg
}

// TestGmail24CompanionEveryReply: every reply of gmail-replies.md (as
// TestGmail24RelayEveryReply, in the same variants), in Postfix's log of a
// refused delivery, read by postfix-enforcer --once with a backup mailbox:
// the right client banned, the right domain blocked, the original sent on
// encapsulated byte for byte; pace, alert and none sanction nobody.
// Beside them, clients that put Gmail's words, fake replies, fake queue ids
// and fake addresses in every field of theirs that Postfix logs; nothing
// they wrote is acted on.
func TestGmail24CompanionEveryReply(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	smtp := harness.NewFakeSMTP(t, harness.Script{Hostname: "postfix.test"})
	var lg gmail24Log
	type want struct{ qid, ip, dom, verdict, rcpt, msg string }
	var wants []want
	for i, c := range gmail24Replies {
		for _, v := range []int{i, i + 3} {
			n := len(wants)
			w := want{qid: fmt.Sprintf("A24%08X", 0x100000+n), ip: fmt.Sprintf("203.0.113.%d", 1+n%250), dom: fmt.Sprintf("g24c%d.example", n),
				verdict: c.verdict, rcpt: fmt.Sprintf("g24r%d@gmail.com", n)}
			if n >= 250 {
				w.ip = fmt.Sprintf("198.51.100.%d", 1+n%250)
			}
			reply := strings.ReplaceAll(gmail24Variant(c, v, "192.0.2.25", w.dom), "{id}", fmt.Sprintf("a%dsi%d.%d", n, n*31, n%40))
			// Postfix censors a tab, and joins the lines with spaces.
			reply = strings.ReplaceAll(strings.ReplaceAll(reply, "\t", "?"), "\r\n", " ")
			status := "bounced"
			if c.code[0] == '4' {
				status = "deferred"
			}
			w.msg = lg.message(w.qid, w.ip, "sender@"+w.dom, w.rcpt, status, c.enh,
				"(host "+gmail24MX+" said: "+reply+" (in reply to end of DATA command))")
			wants = append(wants, w)
		}
	}
	// The victims: clients whose mail Gmail took. Their queue ids, client
	// addresses and domains appear in the attackers' text below.
	victim := func(k int) want {
		return want{qid: fmt.Sprintf("B24%08X", k), ip: fmt.Sprintf("192.0.2.%d", 100+k), dom: fmt.Sprintf("victim%d.example", k), rcpt: fmt.Sprintf("v%d@gmail.com", k)}
	}
	sent := "(250 2.0.0 OK  1795310619 v1si1 - gsmtp)"
	for k := range 4 {
		v := victim(k)
		lg.message(v.qid, v.ip, "x@"+v.dom, v.rcpt, "sent", "2.0.0", sent)
	}
	fake := func(qid, rcpt string) string {
		return qid + ": to=<" + rcpt + ">, relay=" + gmail24MX + ":25, delay=1, delays=0/0/0/1, dsn=5.7.1, status=bounced (host " + gmail24MX +
			" said: 550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. 550 5.7.1 x - gsmtp (in reply to end of DATA command))"
	}
	spf := func(d string) string {
		return "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [" + d + " 30]. 421 4.7.28 x - gsmtp"
	}
	v0, v1, v2, v3 := victim(0), victim(1), victim(2), victim(3)
	// 1. A recipient's local part holds a fake delivery line of a victim's
	//    message; Gmail says no such user.
	lg.message("C24000000A", "203.0.113.251", "a@attacker1.example", `"`+strings.ReplaceAll(fake(v0.qid, v0.rcpt), `"`, ``)+`"@gmail.com`, "bounced", "5.1.1",
		"(host "+gmail24MX+" said: 550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 x - gsmtp (in reply to RCPT TO command))")
	// 2. The sender holds Gmail's SPF-domain words for a victim's domain;
	//    Gmail refuses it as not a valid address, echoing it.
	bad := `"x> is not. ` + spf(v1.dom) + ` <y"@attacker2.example`
	lg.message("C24000000B", "203.0.113.252", bad, "a2@gmail.com", "bounced", "5.1.7",
		"(host "+gmail24MX+" said: 553-5.1.7 The sender address <"+bad+"> is not a valid RFC-5321 address. 553 5.1.7 x - gsmtp (in reply to MAIL FROM command))")
	// 3. A HELO name and a header_checks WARN with a fake delivery line.
	lg.line("smtpd[100]: NOQUEUE: reject: RCPT from unknown[203.0.113.253]: 554 5.7.1 <a@b.example>: Relay access denied; from=<a@b.example> to=<a@b.example> proto=ESMTP helo=<%s>", fake(v2.qid, v2.rcpt))
	lg.line("cleanup[101]: C24000000C: warning: header Subject: %s from x[203.0.113.254]; from=<a@attacker3.example> to=<a3@gmail.com> proto=ESMTP helo=<x>", fake(v2.qid, v2.rcpt))
	// 4. A Gmail refusal whose upstream is not Google, named like it.
	lg.line("smtpd[100]: C24000000D: client=c.test[203.0.113.240]")
	lg.line("qmgr[102]: C24000000D: from=<a@attacker4.example>, size=400, nrcpt=1 (queue active)")
	lg.line("smtp[103]: C24000000D: to=<a4@attacker4.example>, relay=gmail-smtp-in.l.google.com.attacker4.example[203.0.113.241]:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com.attacker4.example[203.0.113.241] said: %s (in reply to end of DATA command))", spf(v3.dom))
	// 5. A very long recipient pushes the real reply out of the line:
	//    Postfix cuts its text at 2000 bytes, and the client made the cut
	//    line end in a whole fake delivery line of a victim's message.
	lg.line("smtpd[100]: C24000000E: client=c.test[203.0.113.242]")
	lg.line("qmgr[102]: C24000000E: from=<a@attacker5.example>, size=400, nrcpt=1 (queue active)")
	head, tail := `C24000000E: to=<"`, " "+strings.ReplaceAll(fake(v3.qid, v3.rcpt), `"`, ``)
	lg.line("smtp[103]: %s%s%s", head, strings.Repeat("x", 2000-len(head)-len(tail)), tail)

	mailLog := writeFile(t, dir, "mail.log", lg.b.String(), 0o644)
	mbox := writeFile(t, dir, "backup.mbox", lg.mbox.String(), 0o600)
	banLog, access := filepath.Join(dir, "bans.log"), filepath.Join(dir, "sender_access")
	out := enforcerOnce(t, nil, append(enforcerArgs(mailLog, filepath.Join(dir, "state"), access,
		writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, smtp.Addr()), "-f", mbox)...)
	bans, _ := os.ReadFile(banLog)
	blocked, _ := os.ReadFile(access)
	banned := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(bans)), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			banned[f[len(f)-1]] = true
		}
	}
	blockedDom := map[string]bool{}
	for _, l := range strings.Split(string(blocked), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == "REJECT" {
			blockedDom[f[0]] = true
		}
	}
	actions := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^\S+ (\S+) .*queue=(\S+)`).FindStringSubmatch(l); m != nil {
			actions[m[2]] = append(actions[m[2]], m[1])
		}
	}
	smtp.WaitTransactions(t, 0, time.Second)
	bad24 := 0
	for n, w := range wants {
		got := strings.Join(actions[w.qid], "+")
		var problems []string
		switch w.verdict {
		case "ban", "block-domain":
			if p := gmail24Sanctioned(w.verdict, got, w.ip, w.dom, banned, blockedDom); p != "" {
				problems = append(problems, p)
			}
		case "encapsulate":
			var cp *harness.Transaction
			for _, tx := range smtp.Transactions() {
				if tx.Accepted() && len(tx.To()) == 1 && tx.To()[0] == w.rcpt {
					cp = &tx
				}
			}
			switch {
			case got != "encapsulate" || cp == nil:
				problems = append(problems, fmt.Sprintf("action %q, copy %v", got, cp != nil))
			default:
				att := strings.ReplaceAll(string(compAttachment(t, cp.Data)), "\r\n", "\n")
				if att != w.msg {
					problems = append(problems, fmt.Sprintf("attachment %q; want %q", att, w.msg))
				}
			}
		default:
			if got != "" && got != w.verdict && !(w.verdict == "pace" && got == "pace") {
				problems = append(problems, fmt.Sprintf("action %q", got))
			}
		}
		if banned[w.ip] != (w.verdict == "ban") || blockedDom[w.dom] != (w.verdict == "block-domain") {
			problems = append(problems, fmt.Sprintf("banned %v, blocked %v", banned[w.ip], blockedDom[w.dom]))
		}
		if len(problems) > 0 {
			bad24++
			t.Errorf("case %d %s (want %s): %s", n, w.qid, w.verdict, strings.Join(problems, "; "))
		}
	}
	bannable := map[string]bool{}
	for _, w := range wants {
		bannable[w.ip] = bannable[w.ip] || w.verdict == "ban"
	}
	for ip := range banned {
		if !bannable[ip] {
			t.Errorf("banned %s: no reply of Gmail's named its message", ip)
		}
	}
	for k := range 4 {
		if v := victim(k); banned[v.ip] || blockedDom[v.dom] || len(actions[v.qid]) > 0 {
			t.Errorf("victim %d (%s %s %s) acted on: %v, banned %v, blocked %v", k, v.qid, v.ip, v.dom, actions[v.qid], banned[v.ip], blockedDom[v.dom])
		}
	}
	for d := range blockedDom {
		if !strings.HasPrefix(d, "g24c") {
			t.Errorf("blocked %s, steered", d)
		}
	}
	for _, q := range []string{"C24000000A", "C24000000B", "C24000000C", "C24000000D", "C24000000E"} {
		for _, a := range actions[q] {
			if a == "ban" || a == "block-domain" {
				t.Errorf("attacker %s: %s", q, a)
			}
		}
	}
	if bytes.Contains(blocked, []byte("victim")) {
		t.Errorf("sender_access:\n%s", blocked)
	}
	t.Logf("%d replies checked, %d acted on wrongly", len(wants), bad24)
}

// TestGmail24RealPostfix: every reply of gmail-replies.md, its lines
// ending in spaces and a tab, answered by a fake Gmail to a private
// Postfix relaying to it, and postfix-enforcer reading Postfix's own log
// of them: the actions are the document's.
func TestGmail24RealPostfix(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	dir := t.TempDir()
	_, mbox, bcc := startCompanionBackup(t, dir)
	pf := companionPostfixWith(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(gmail.Addr()), MainCF: bcc})
	type sent struct{ ip, dom, rcpt, verdict string }
	var all []sent
	for i, c := range gmail24Replies {
		s := sent{ip: fmt.Sprintf("203.0.113.%d", 10+i), dom: fmt.Sprintf("g24pf%d.example", i), rcpt: fmt.Sprintf("g24pf%d@gmail.test", i), verdict: c.verdict}
		gmail.answer(s.rcpt, stData, gmail24Variant(c, 2, "192.0.2.25", s.dom))
		hostileSend(t, pf.Addr(), s.ip, "c.test", []string{"MAIL FROM:<sender@" + s.dom + ">", "RCPT TO:<" + s.rcpt + ">"}, "")
		all = append(all, s)
	}
	compWaitCount(t, pf, `to=<g24pf\d+@gmail\.test>, relay=\S+, .*status=(bounced|deferred)`, len(all), 120*time.Second)
	compWait(t, 20*time.Second, "the backup mbox holds every message", func() bool {
		b, _ := os.ReadFile(mbox)
		return bytes.Count(b, []byte("\nSubject: hostile")) >= len(all)
	})
	banLog, access := filepath.Join(dir, "bans.log"), filepath.Join(dir, "sender_access")
	out := enforcerOnce(t, nil, append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access,
		writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644), banLog, pf.Addr()), "-f", mbox, "--trusted-upstream", "127.0.0.1")...)
	bans, _ := os.ReadFile(banLog)
	blocked, _ := os.ReadFile(access)
	bad := 0
	for i, s := range all {
		var act string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, " to=<"+s.rcpt+">") {
				act = strings.Fields(l)[1]
			}
		}
		ok := act == s.verdict || act == "" && (s.verdict == "none" || s.verdict == "alert" || s.verdict == "pace") ||
			act == "report" && s.verdict == "none"
		if s.verdict == "ban" {
			ok = ok && bytes.Contains(bans, []byte(" "+s.ip+"\n"))
		}
		if s.verdict == "block-domain" {
			ok = ok && regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(s.dom)+`\s+REJECT`).Match(blocked)
		}
		if !ok {
			bad++
			t.Errorf("case %d (%s): action %q", i, s.verdict, act)
		}
	}
	if m := regexp.MustCompile(`said: [^\n]*\?`).FindString(pf.MailLog()); m == "" {
		t.Errorf("no reply with a censored tab in Postfix's log; the test means nothing")
	}
	t.Logf("%d replies checked through Postfix, %d wrong", len(all), bad)
}

// TestGmail24PostfixKeepsAlertMail: Gmail's permanent refusals that blame
// the relay itself (no PTR record 5.7.25, no TLS 5.7.29, the daily
// sending limit 5.4.5) are alerts: the administrator is told and the mail
// is kept. Postfix bounced such mail to its sender while the docs said
// "Postfix keeps the mail"; with the smtp_reply_filter lines that
// docs/postfix-enforcer.md now gives, Postfix defers it, and
// postfix-enforcer still reads the alert.
func TestGmail24PostfixKeepsAlertMail(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "postfix-enforcer.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```\n(# Gmail's refusals that blame the relay itself.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/postfix-enforcer.md has no smtp_reply_filter block for the alerts")
	}
	dir := t.TempDir()
	filter := writeFile(t, dir, "smtp_reply_filter", string(m[1]), 0o644)
	gmail := newFakeGmail(t)
	pf := companionPostfixWith(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{"smtp_reply_filter = regexp:" + filter}})
	replies := map[string]string{
		"ptr@gmail.test":   gmailReply("550", "5.7.25", "[192.0.2.25] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records."),
		"tls@gmail.test":   gmailReply("550", "5.7.29", "This message was blocked because it wasn't sent over a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections."),
		"quota@gmail.test": gmailReply("550", "5.4.5", "Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"),
		"spam@gmail.test":  gmailUnsolicited,
	}
	i := 0
	for rcpt, r := range replies {
		i++
		gmail.answer(rcpt, stData, r)
		hostileSend(t, pf.Addr(), fmt.Sprintf("203.0.113.%d", 60+i), "c.test", []string{"MAIL FROM:<a@g24alert.example>", "RCPT TO:<" + rcpt + ">"}, "")
	}
	compWaitCount(t, pf, `to=<\w+@gmail\.test>, relay=\S+, .*status=(bounced|deferred)`, len(replies), 60*time.Second)
	log := pf.MailLog()
	for rcpt := range replies {
		want := "deferred"
		if rcpt == "spam@gmail.test" {
			want = "bounced" // the filter leaves Gmail's other replies alone
		}
		if !regexp.MustCompile(`to=<` + regexp.QuoteMeta(rcpt) + `>, .*status=` + want + ` `).MatchString(log) {
			t.Errorf("%s: not %s:\n%s", rcpt, want, log)
		}
	}
	out := enforcerOnce(t, nil, append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
		writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644), filepath.Join(dir, "bans.log"), pf.Addr()), "--trusted-upstream", "127.0.0.1")...)
	compWantLines(t, out, []string{
		`^\S+ alert .*to=<ptr@gmail\.test> .*rule=gmail-no-ptr`,
		`^\S+ alert .*to=<tls@gmail\.test> .*rule=gmail-no-tls`,
		`^\S+ alert .*to=<quota@gmail\.test> .*rule=gmail-sending-limit`,
		`^\S+ ban client=.*to=<spam@gmail\.test> .*rule=gmail-unsolicited`,
	})
}
