package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm26SendBDAT is sendFrom with the message sent in two BDAT chunks
// (RFC 3030), the second one LAST, instead of DATA: the reply to BDAT
// LAST is the transaction's Final.
func gm26SendBDAT(addr, ip, from string, to []string, body string) (transaction, error) {
	c, greet, err := dialFrom(addr, ip)
	tx := transaction{Greeting: greet}
	if err != nil {
		return tx, err
	}
	defer c.Close()
	if greet.code() != 220 {
		return tx, errRefused
	}
	if tx.Ehlo, err = c.cmd("EHLO client.e2e.test"); err != nil {
		return tx, err
	}
	if tx.Mail, err = c.cmd("MAIL FROM:<%s>", from); err != nil || tx.Mail.code() != 250 {
		return tx, err
	}
	accepted, err := c.rcptAll(&tx, to)
	if err != nil {
		return tx, err
	}
	if accepted == 0 {
		c.cmd("QUIT")
		return tx, nil
	}
	msg := strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	half := strings.Index(msg, "\r\n\r\n") + 4
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(half) + "\r\n" + msg[:half])); err != nil {
		return tx, err
	}
	if tx.Data, err = c.read(); err != nil || tx.Data.code() != 250 {
		return tx, err
	}
	rest := msg[half:]
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(len(rest)) + " LAST\r\n" + rest)); err != nil {
		return tx, err
	}
	tx.Final, err = c.read()
	c.cmd("QUIT")
	return tx, err
}

// TestGM26EveryReplyAfterBDAT: every reply of gmail-replies.md given by
// the fake Gmail where Gmail gives it, to clients that send their message
// in BDAT chunks (CHUNKING, RFC 3030) rather than with DATA, through a
// relay that stores and forwards and through a proxy, welcomelisted or
// not: each gets its verdict's action (TestRevPFE3RelayEveryReply's
// checks), the proxy's refusal at the final chunk read as one after the
// content.
func TestGM26EveryReplyAfterBDAT(t *testing.T) {
	t.Parallel()
	relayEveryReplyBy(t, pfe3Replies(t), gm26SendBDAT)
}

// TestGM26CompanionPostfixLogrotate: Postfix's own rotation of its
// maillog_file ("postfix logrotate": the file renamed to
// maillog.YYYYMMDD-HHMMSS, then compressed with gzip, the uncompressed
// file removed) between a message's client= line and Gmail's refusal of
// it: postfix-enforcer, following, bans the client all the same; and one
// stopped in the middle (before the rotation and the refusal) and started
// again when the old file is gone (compressed) bans it too, from what its
// state kept of the old file.
func TestGM26CompanionPostfixLogrotate(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", MaxStall: 30 * time.Second,
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageEndOfData {
				return harness.Response{}
			}
			return harness.Response{Delay: 4 * time.Second, Reply: companionMessages[0].reply}
		}})
	pf := companionPostfix(t, gmail.Addr())
	dir := t.TempDir()
	wl := writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644)
	banLog := filepath.Join(dir, "bans.log")
	args := append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl, banLog, pf.Addr()),
		"--trusted-upstream", "127.0.0.1")
	rotate := func() {
		t.Helper()
		out, err := exec.Command("postfix", "-c", pf.ConfigDir(), "logrotate").CombinedOutput()
		if err != nil {
			t.Fatalf("postfix logrotate: %v\n%s", err, out)
		}
	}
	send := func(ip, to string) {
		t.Helper()
		m := companionMessages[0]
		m.ip, m.to = ip, to
		compSend(t, pf.Addr(), m)
	}

	// 1. Following across the rotation.
	f := harness.Start(t, harness.Binary(t), append([]string{"postfix-enforcer", "-d"}, args...)...)
	compWait(t, 30*time.Second, "the follower to start", func() bool { return strings.Contains(f.Stderr(), "postfix-enforcer started") })
	time.Sleep(500 * time.Millisecond)
	send("203.0.113.31", "spam@gmail.test")
	rotate()
	compWait(t, 40*time.Second, "a ban line for 203.0.113.31", func() bool {
		b, _ := os.ReadFile(banLog)
		return bytes.Contains(b, []byte(" 203.0.113.31\n"))
	})

	// 2. Stopped after the rotation, started again after the refusal.
	send("203.0.113.32", "spam2@gmail.test")
	compWaitLog(t, pf, `\w+: client=\S+\[203\.0\.113\.32\]`, 10*time.Second)
	q2 := regexp.MustCompile(`(\w+): client=\S+\[203\.0\.113\.32\]`).FindStringSubmatch(pf.MailLog())[1]
	compWait(t, 20*time.Second, "the follower to read the message's lines", func() bool {
		return strings.Contains(f.Stderr(), "kind=queued queue="+q2)
	})
	f.Signal(syscall.SIGTERM)
	if code, err := f.Wait(20 * time.Second); code != 0 || err != nil {
		t.Fatalf("follower: exit %d, %v\nstderr:\n%s", code, err, f.Stderr())
	}
	t.Logf("postfix-enforcer (following):\n%s\nstderr:\n%s", f.Stdout(), f.Stderr())
	rotate()
	compWaitLog(t, pf, `to=<spam2@gmail\.test>, .*status=bounced`, 40*time.Second)
	enforcerOnce(t, nil, args...)
	compWantBans(t, banLog, "203.0.113.31", "203.0.113.32")
	matches, _ := filepath.Glob(pf.MailLogFile() + ".*")
	t.Logf("rotated files: %q", matches)
}

// TestGM26TwoRelaysShareBans: two relays, each with its own spool, share
// one ban file and one sender_access table ([enforce] bans and
// sender_access). Gmail refuses a spammer's message through each at
// about the same moment, and blocks a third client's domain through
// each: both bans end up in the file, each relay refuses both spammers
// within seconds (the file is re-read on the five-second timer), both
// refuse the blocked domain, and neither writes a ban event for the
// other's ban.
func TestGM26TwoRelaysShareBans(t *testing.T) {
	t.Parallel()
	spam := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", 66)
	domain := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked.", 66)
	gmail := newFakeGmail(t)
	gmail.answer("spam1@gmail.test", stData, spam)
	gmail.answer("spam2@gmail.test", stData, spam)
	gmail.answer("dom1@gmail.test", stData, domain)
	gmail.answer("dom2@gmail.test", stData, domain)
	dir := t.TempDir()
	cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + filepath.Join(dir, "bans") + "\"\nsender_access = \"" + filepath.Join(dir, "sender_access") + "\"\n"
	a := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	b := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	type msg struct {
		r          *relay
		ip, from   string
		to         string
		wantEvents string
	}
	msgs := []msg{
		{a, "127.0.26.1", "s1@spam1.example", "spam1@gmail.test", "ban"},
		{b, "127.0.26.2", "s2@spam2.example", "spam2@gmail.test", "ban"},
		{a, "127.0.26.3", "d1@dom1.example", "dom1@gmail.test", "block"},
		{b, "127.0.26.4", "d2@dom2.example", "dom2@gmail.test", "block"},
	}
	done := make(chan error, len(msgs))
	for _, m := range msgs {
		go func() {
			tx, err := sendFrom(m.r.addr(), m.ip, m.from, []string{m.to}, gmailMessage(m.from, "gm26 "+m.ip))
			if err == nil && tx.Final.code() != 250 {
				err = fmt.Errorf("%s: %v", m.ip, tx.Final)
			}
			done <- err
		}()
	}
	for range msgs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		m.r.waitEvent(m.wantEvents, 20*time.Second, func(e *maillog.Entry) bool {
			return e.Get("client") == m.ip || strings.HasSuffix(m.from, "@"+e.Get("domain"))
		})
	}
	// Both relays refuse both spammers, within the reload timer.
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range []*relay{a, b} {
		for _, ip := range []string{"127.0.26.1", "127.0.26.2"} {
			for {
				c, greet, err := dialFrom(r.addr(), ip)
				if err == nil {
					c.Close()
				}
				if greet.code() == 554 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("relay %s greets banned %s with %v (%v)", r.addr(), ip, greet, err)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		// The table is re-read within seconds of a change (5 s timer).
		for _, from := range []string{"x@dom1.example", "x@dom2.example"} {
			for {
				tx, _ := sendFrom(r.addr(), "127.0.26.9", from, []string{"ok@gmail.test"}, gmailMessage(from, "after"))
				if tx.Mail.code()/100 == 5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("relay %s: MAIL FROM:<%s> heard %v; want it refused (blocked)", r.addr(), from, tx.Mail)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "bans"))
	for _, ip := range []string{"127.0.26.1", "127.0.26.2"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ip) + ` until=`).Match(data) {
			t.Errorf("ban file:\n%s\nwant %s banned", data, ip)
		}
	}
	access, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	for _, d := range []string{"dom1.example", "dom2.example"} {
		if n := len(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(d)+`\s+REJECT`).FindAll(access, -1)); n != 1 {
			t.Errorf("sender_access lists %s %d times; want once:\n%s", d, n, access)
		}
	}
	for i, r := range []*relay{a, b} {
		var got []string
		for _, e := range r.events("ban") {
			got = append(got, e.Get("client"))
		}
		if want := msgs[i].ip; len(got) != 1 || got[0] != want {
			t.Errorf("relay %d wrote ban events for %q; want %s alone", i, got, want)
		}
	}
}

// TestGM26BanExpiresAndPersists: a ban found by Gmail's refusal takes
// effect after [enforce] ban_delay, keeps the client out across a kill
// -9 and a restart (the ban file), ends after ban_time (an unban line
// with reason=expired, within five seconds), and the client is let in
// again; its fail2ban line (ban_log) was written once, not again at the
// restart.
func TestGM26BanExpiresAndPersists(t *testing.T) {
	t.Parallel()
	spam := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", 66)
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, spam)
	dir := t.TempDir()
	banLog := filepath.Join(dir, "bans.log")
	cfg := "[enforce]\nban_delay = \"2s\"\nban_time = \"12s\"\nban_log = \"" + banLog + "\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	const ip = "127.0.26.20"
	greet := func() int {
		c, g, err := dialFrom(r.addr(), ip)
		if err == nil {
			c.Close()
		}
		return g.code()
	}
	start := time.Now()
	if tx, err := sendFrom(r.addr(), ip, "s@spam.example", []string{"spam@gmail.test"}, gmailMessage("s@spam.example", "gm26 expiry")); err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %v", tx.Final, err)
	}
	r.waitEvent("ban", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip })
	if code := greet(); code != 554 {
		t.Fatalf("after the ban line, greeting %d; want 554", code)
	}
	r.kill()
	r.restart()
	if code := greet(); code != 554 {
		t.Errorf("after a kill -9 and a restart, greeting %d; want 554 (the ban persists)", code)
	}
	r.waitEvent("unban", 30*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip && e.Get("reason") == "expired" })
	if el := time.Since(start); el < 12*time.Second {
		t.Errorf("unbanned after %v; want at least ban_delay + ban_time", el)
	}
	if code := greet(); code != 220 {
		t.Errorf("after the ban expired, greeting %d; want 220", code)
	}
	b, _ := os.ReadFile(banLog)
	if n := strings.Count(string(b), "bannable "); n != 1 || !strings.HasSuffix(strings.TrimSpace(string(b)), " "+ip) {
		t.Errorf("ban log:\n%s\nwant one bannable line for %s", b, ip)
	}
}

// TestGM26CompanionSyslogNames: a real Postfix that takes mail on a
// second smtpd logging as postfix/submission/smtpd (master.cf's -o
// syslog_name=postfix/submission) and delivers through a transport
// logging as postfix-out/smtp, as multi-instance and submission set-ups
// do. A spammer on each port is banned, a domain refused through the
// second is blocked, a welcomelisted client on the second is spared, and
// nothing else is sanctioned.
func TestGM26CompanionSyslogNames(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	sub := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF:    []string{"relay_transport = out", "default_transport = out"},
		MasterCF: []string{
			sub + " inet n - n - - smtpd -o syslog_name=postfix/submission",
			"out unix - - n - - smtp -o syslog_name=postfix-out",
		},
	})
	harness.WaitPort(t, sub, 10*time.Second)
	gm25Send(t, pf.Addr(), "203.0.113.41", "mx.one.test", "mx.one.test",
		[]string{"MAIL FROM:<a@one.example>", "RCPT TO:<spam@gmail.test>"}, "Subject: one\r\nMessage-Id: <one@one.example>\r\n\r\nbuy\r\n")
	gm25Send(t, sub, "203.0.113.42", "mx.two.test", "mx.two.test",
		[]string{"MAIL FROM:<b@two.example>", "RCPT TO:<spam@gmail.test>"}, "Subject: two\r\nMessage-Id: <two@two.example>\r\n\r\nbuy\r\n")
	gm25Send(t, sub, "203.0.113.43", "mx.three.test", "mx.three.test",
		[]string{"MAIL FROM:<c@three.example>", "RCPT TO:<domain@gmail.test>"}, "Subject: three\r\nMessage-Id: <three@three.example>\r\n\r\nbuy\r\n")
	gm25Send(t, sub, "198.51.100.44", "mx.partner.test", "mx.partner.test",
		[]string{"MAIL FROM:<d@partner.example>", "RCPT TO:<spam@gmail.test>"}, "Subject: four\r\nMessage-Id: <four@partner.example>\r\n\r\nbuy\r\n")
	compWaitCount(t, pf, `postfix-out/smtp\[\d+\]: \w+: to=<(spam|domain)@gmail\.test>, .*status=bounced`, 4, 30*time.Second)
	log := pf.MailLog()
	if !strings.Contains(log, "postfix/submission/smtpd[") {
		t.Fatalf("no postfix/submission/smtpd line in the log:\n%s", log)
	}
	dir := t.TempDir()
	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n198.51.100.44\n", "--trusted-upstream", "127.0.0.1")
	compWantBanSet(t, filepath.Join(dir, "bans.log"), "203.0.113.41", "203.0.113.42")
	access, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	if !regexp.MustCompile(`(?m)^three\.example\s+REJECT$`).Match(access) || regexp.MustCompile(`(?m)^(one|two|partner)\.example`).Match(access) {
		t.Errorf("sender_access:\n%s\nwant three.example blocked alone", access)
	}
	compWantLines(t, out, []string{`^\S+ (spare|encapsulate|report) .*client=198\.51\.100\.44 `})
	if strings.Contains(out, " ban client=198.51.100.44") {
		t.Errorf("the welcomelisted client was banned:\n%s", out)
	}
}

// TestGM26RealPostfixMailRcpt: every reply of gmail-replies.md given by
// the fake Gmail in reply to MAIL FROM, then to RCPT TO, to a private
// Postfix relaying to it, and postfix-enforcer reading Postfix's log: no
// content was sent, so a ban's words (about the relay's address) ban
// nobody; a domain's block and an encapsulation hold (the message is in
// the backup mbox); nothing else is sanctioned.
func TestGM26RealPostfixMailRcpt(t *testing.T) {
	t.Parallel()
	for _, st := range []harness.Stage{stMail, stRcpt} {
		t.Run(st.String(), func(t *testing.T) {
			t.Parallel()
			gmail := newFakeGmail(t)
			dir := t.TempDir()
			_, mbox, bcc := startCompanionBackup(t, dir)
			pf := companionPostfixWith(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(gmail.Addr()), MainCF: bcc})
			type sent struct{ ip, dom, from, rcpt, verdict, rule string }
			var all []sent
			for i, c := range pfe3Replies(t) {
				s := sent{ip: fmt.Sprintf("203.0.113.%d", 10+i), dom: fmt.Sprintf("g26%s%d.example", st, i), rcpt: fmt.Sprintf("g26%s%d@gmail.test", st, i), verdict: c.verdict, rule: c.rule}
				s.from = "sender@" + s.dom
				key := s.rcpt
				if st == stMail {
					key = s.from
				}
				gmail.answer(key, st, strings.ReplaceAll(c.reply(i, s.from), "{id}", fmt.Sprintf("g26si%d", i)))
				hostileSend(t, pf.Addr(), s.ip, "c.test", []string{"MAIL FROM:<" + s.from + ">", "RCPT TO:<" + s.rcpt + ">"}, "")
				all = append(all, s)
			}
			compWaitCount(t, pf, `to=<g26\w+@gmail\.test>, relay=\S+, .*status=(bounced|deferred)`, len(all), 120*time.Second)
			compWait(t, 20*time.Second, "the backup mbox holds every message", func() bool {
				b, _ := os.ReadFile(mbox)
				return bytes.Count(b, []byte("\nSubject: hostile")) >= len(all)
			})
			banLog, access := filepath.Join(dir, "bans.log"), filepath.Join(dir, "sender_access")
			out := enforcerOnce(t, nil, append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access,
				writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644), banLog, pf.Addr()), "-f", mbox, "--trusted-upstream", "127.0.0.1")...)
			bans, _ := os.ReadFile(banLog)
			blocked, _ := os.ReadFile(access)
			for i, s := range all {
				var acts []string
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, " to=<"+s.rcpt+">") {
						acts = append(acts, strings.Fields(l)[1])
					}
				}
				act := strings.Join(acts, ",")
				isBanned := bytes.Contains(bans, []byte(" "+s.ip+"\n"))
				isBlocked := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s.dom) + `\s+REJECT`).Match(blocked)
				var ok bool
				switch s.verdict {
				case "block-domain":
					ok = act == "block-domain" && isBlocked
				case "encapsulate":
					ok = act == "encapsulate"
				case "alert":
					ok = act == "alert" || act == ""
				default: // ban (before the content), pace, none, report
					ok = act == "" || act == "pace" || act == "report" && s.verdict == "report"
				}
				if s.verdict != "block-domain" && isBlocked || isBanned {
					ok = false
				}
				if !ok {
					t.Errorf("case %d (%s %s): actions %q, banned %v, blocked %v", i, s.verdict, s.rule, act, isBanned, isBlocked)
				}
			}
		})
	}
}

// TestGM26RealPostfixSomeRecipients: messages to three Gmail recipients
// through a real Postfix, one refused at RCPT for itself (no such user)
// and the other two at the end of the data for the message (spam, the
// sender's domain, DMARC). Postfix logs a line per recipient;
// postfix-enforcer bans the client once, blocks the domain once,
// encapsulates a copy for each recipient the message's refusal covered
// and none for the one refused at RCPT.
func TestGM26RealPostfixSomeRecipients(t *testing.T) {
	t.Parallel()
	noUser := foldReply("550", "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser", 60)
	byDomain := map[string]string{
		"spam.example":   foldReply("550", "5.7.1", "[127.0.0.1 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", 70),
		"domrep.example": foldReply("550", "5.7.1", "[127.0.0.1 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked.", 64),
		"dmarc.example":  foldReply("550", "5.7.26", "Unauthenticated email from dmarc.example is not accepted due to domain's DMARC policy. Please contact the administrator of dmarc.example domain if this was a legitimate mail. To learn about the DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection", 55),
	}
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			switch {
			case stage == harness.StageRcpt && strings.HasPrefix(strings.TrimPrefix(strings.ToLower(arg), "<"), "nouser"):
				return harness.Response{Reply: strings.ReplaceAll(noUser, "{id}", "g26nu")}
			case stage == harness.StageEndOfData && !strings.EqualFold(tx.MailFrom, "postmaster@relay.test"):
				_, dom, _ := strings.Cut(tx.MailFrom, "@")
				if r, ok := byDomain[dom]; ok {
					return harness.Response{Reply: strings.ReplaceAll(r, "{id}", "g26"+dom[:4])}
				}
			}
			return harness.Response{}
		}})
	dir := t.TempDir()
	_, mbox, bcc := startCompanionBackup(t, dir)
	pf := companionPostfixWith(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(gmail.Addr()), MainCF: bcc})
	clients := map[string]string{"spam.example": "203.0.113.51", "domrep.example": "203.0.113.52", "dmarc.example": "203.0.113.53"}
	for _, dom := range []string{"spam.example", "domrep.example", "dmarc.example"} {
		p := dom[:4]
		hostileSend(t, pf.Addr(), clients[dom], "c.test", []string{"MAIL FROM:<a@" + dom + ">",
			"RCPT TO:<nouser" + p + "@gmail.test>", "RCPT TO:<b" + p + "@gmail.test>", "RCPT TO:<c" + p + "@gmail.test>"}, "")
	}
	compWaitCount(t, pf, `to=<\w+@gmail\.test>, relay=\S+, .*status=bounced`, 9, 60*time.Second)
	compWait(t, 20*time.Second, "the backup mbox holds every message", func() bool {
		b, _ := os.ReadFile(mbox)
		return bytes.Count(b, []byte("\nSubject: hostile")) >= 3
	})
	banLog, access := filepath.Join(dir, "bans.log"), filepath.Join(dir, "sender_access")
	out := enforcerOnce(t, nil, append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access,
		writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644), banLog, pf.Addr()), "-f", mbox, "--trusted-upstream", "127.0.0.1")...)
	compWantBans(t, banLog, "203.0.113.51")
	blocked, _ := os.ReadFile(access)
	if n := len(regexp.MustCompile(`(?m)^domrep\.example\s+REJECT$`).FindAll(blocked, -1)); n != 1 || regexp.MustCompile(`(?m)^(spam|dmarc)\.example`).Match(blocked) {
		t.Errorf("sender_access:\n%s\nwant domrep.example blocked once, alone", blocked)
	}
	count := func(re string) int { return len(regexp.MustCompile(`(?m)`+re).FindAllString(out, -1)) }
	if n := count(`^\S+ ban `); n != 1 {
		t.Errorf("%d ban lines; want 1:\n%s", n, out)
	}
	for _, rcpt := range []string{"bdmar@gmail.test", "cdmar@gmail.test"} {
		if n := count(`^\S+ encapsulate .*to=<` + rcpt + `>`); n != 1 {
			t.Errorf("%d encapsulate lines for %s; want 1:\n%s", n, rcpt, out)
		}
	}
	if n := count(`^\S+ (ban|block-domain|encapsulate) .*to=<nouser`); n != 0 {
		t.Errorf("an action for a recipient refused at RCPT:\n%s", out)
	}
	compWait(t, 20*time.Second, "the two encapsulated copies at Gmail", func() bool {
		n := 0
		for _, tx := range gmail.Transactions() {
			if tx.Accepted() && bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:")) {
				n++
			}
		}
		return n >= 2
	})
	time.Sleep(time.Second)
	var copies []string
	for _, tx := range gmail.Transactions() {
		if tx.Accepted() && bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:")) {
			copies = append(copies, strings.Join(tx.To(), ","))
		}
	}
	slices.Sort(copies)
	if strings.Join(copies, " ") != "bdmar@gmail.test cdmar@gmail.test" {
		t.Errorf("encapsulated copies to %q; want one to bdmar and one to cdmar", copies)
	}
}

// TestGM26WelcomelistedSenderAccessListed: docs/enforce.md tells how
// relaykeeper refuses the blocked domains ("sender_restrictions =
// [check_sender_access hash:/etc/postfix/sender_access]") and that the
// relay refuses its enforcer's table's domains for every client but the
// welcomelist's. With the enforcer's table also named in
// sender_restrictions, as the page shows, a welcomelisted partner whose
// domain a spammer had blocked is still served; any other client sending
// as that domain is refused.
func TestGM26WelcomelistedSenderAccessListed(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	dir := t.TempDir()
	access := writeFile(t, dir, "sender_access", "# blocked by the enforcer\npartner.example REJECT\n", 0o644)
	cfg := "[enforce]\nban_delay = \"0s\"\nsender_access = \"" + access + "\"\n" +
		"[policy]\nsender_restrictions = [\"check_sender_access hash:" + access + "\"]\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg, welcome: "127.0.26.50\n"})
	tx, err := sendFrom(r.addr(), "127.0.26.50", "a@partner.example", []string{"x@gmail.test"}, gmailMessage("a@partner.example", "gm26 partner"))
	if err != nil || heardReply(tx).code() != 250 {
		t.Errorf("the welcomelisted partner heard %v (%v); want its mail taken", heardReply(tx), err)
	}
	tx, _ = sendFrom(r.addr(), "127.0.26.51", "a@partner.example", []string{"x@gmail.test"}, gmailMessage("a@partner.example", "gm26 other"))
	if c := heardReply(tx).code(); c/100 != 5 {
		t.Errorf("another client sending as partner.example heard %v; want it refused", heardReply(tx))
	}
}
