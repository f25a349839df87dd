package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm19Msg is one message of a synthetic Postfix log: its queue id, the
// client that submitted it, its envelope sender, and the delivery lines
// Postfix wrote for it (one per recipient and attempt).
type gm19Msg struct {
	qid, ip, from string
	deliveries    []string
}

// gm19Said is a delivery line as postfix/smtp writes it: Gmail's reply
// joined on one line, each line's code prefix kept, then the stage.
func gm19Said(qid, to, status, dsn, relay, reply, stage string) string {
	host := relay
	if i := strings.LastIndexByte(relay, ':'); i > 0 {
		host = relay[:i]
	}
	return fmt.Sprintf("Dec  6 14:00:04 mx1 postfix/smtp[2112]: %s: to=<%s>, relay=%s, delay=1.2, delays=0.1/0/0.4/0.7, dsn=%s, status=%s (host %s said: %s (in reply to %s))",
		qid, to, relay, dsn, status, host, reply, stage)
}

// gm19Log writes msgs as Postfix logs them: smtpd's client line,
// cleanup's message-id, qmgr's from, then the delivery lines.
func gm19Log(msgs []gm19Msg) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "Dec  6 14:00:01 mx1 postfix/smtpd[2107]: %s: client=mx.client.example[%s]\n", m.qid, m.ip)
		fmt.Fprintf(&b, "Dec  6 14:00:01 mx1 postfix/cleanup[2108]: %s: message-id=<%s@client.example>\n", m.qid, m.qid)
		fmt.Fprintf(&b, "Dec  6 14:00:01 mx1 postfix/qmgr[2100]: %s: from=<%s>, size=1234, nrcpt=%d (queue active)\n", m.qid, m.from, len(m.deliveries))
		for _, d := range m.deliveries {
			b.WriteString(d + "\n")
		}
	}
	return b.String()
}

const gm19MX = "gmail-smtp-in.l.google.com[142.250.102.27]:25"

// gm19Fold is Gmail's multi-line reply as Postfix joins it: each of
// Gmail's lines keeps its "421-4.7.28" prefix, the last "421 4.7.28".
func gm19Fold(code, enh, text, id string) string {
	return strings.ReplaceAll(strings.ReplaceAll(foldReply(code, enh, text, 60), "{id}", id), "\r\n", " ")
}

// TestGm19CompanionDocumentGaps: postfix-enforcer over a synthetic Postfix
// log, for the replies of gmail-replies.md the other suites leave out or
// give in one form only: Gmail's "[domain 30]" with the envelope sender in
// the bracketed domain (blocked) or under it (blocked), and not in it
// (reported, nothing blocked); the same-Message-ID refusal deferred twice
// (one ban); "450-4.2.1 ... receiving mail at a rate" for two recipients
// at RCPT (paced, nobody sanctioned); smtp.gmail.com refusing the relay's
// login (an alert, nobody sanctioned); 553-5.1.7 at MAIL FROM
// (encapsulate: about the sender's address, not its content); and the IP
// rate refusal at RCPT (nobody banned). Each for a client that is not
// welcomelisted and for one that is (never banned or blocked).
func TestGm19CompanionDocumentGaps(t *testing.T) {
	t.Parallel()
	spf := func(d, id string) string {
		return gm19Fold("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain ["+d+" 30]. To protect our users from spam, mail sent from your SPF domain has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError", id)
	}
	dkim := func(d, id string) string {
		return gm19Fold("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited email originating from your DKIM domain ["+d+" 30]. To protect our users from spam, email sent from your DKIM domain has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError", id)
	}
	sameID := func(id string) string {
		return gm19Fold("421", "4.7.28", "Gmail has detected this sender exceeded the quota for sending messages that have the same Message-ID:. To best protect our users, the message has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError", id)
	}
	rate := func(id string) string {
		return gm19Fold("450", "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later point. If the user is able to receive mail at that time, your message will be delivered. For more information, go to https://support.google.com/mail/?p=ReceivingRate", id)
	}
	login := gm19Fold("535", "5.7.8", "Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials", "l1")
	badFrom := func(from, id string) string {
		return gm19Fold("553", "5.1.7", "The sender address <"+from+"> is not a valid RFC-5321 address. For more information, go to https://support.google.com/a/answer/3221692 and review RFC 5321 specifications.", id)
	}
	ipRate := gm19Fold("550", "5.7.28", "[192.0.2.25 1] There is an unusual rate of unsolicited email originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. To review our bulk email senders guidelines, go to https://support.google.com/mail/?p=UnsolicitedIPError", "i1")

	msgsFor := func(p, ipPre string) []gm19Msg {
		q := func(n int) string { return fmt.Sprintf("%s%02dA0B1C2D", p, n) }
		ip := func(n int) string { return fmt.Sprintf("%s.%d", ipPre, 10+n) }
		return []gm19Msg{
			{q(1), ip(1), "bob@" + p + "spf.example", []string{gm19Said(q(1), "a1@gmail.com", "deferred", "4.7.28", gm19MX, spf(p+"spf.example", "s1"), "end of DATA command")}},
			{q(2), ip(2), "bob@news." + p + "dkim.example", []string{gm19Said(q(2), "a2@gmail.com", "deferred", "4.7.28", gm19MX, dkim(p+"dkim.example", "s2"), "end of DATA command")}},
			{q(3), ip(3), "bob@" + p + "replayer.example", []string{gm19Said(q(3), "a3@gmail.com", "deferred", "4.7.28", gm19MX, dkim(p+"signer.example", "s3"), "end of DATA command")}},
			{q(4), ip(4), "bob@" + p + "same.example", []string{
				gm19Said(q(4), "a4@gmail.com", "deferred", "4.7.28", gm19MX, sameID("s4"), "end of DATA command"),
				gm19Said(q(4), "a4@gmail.com", "deferred", "4.7.28", gm19MX, sameID("s5"), "end of DATA command")}},
			{q(5), ip(5), "bob@" + p + "rate.example", []string{
				gm19Said(q(5), "a5@gmail.com", "deferred", "4.2.1", gm19MX, rate("s6"), "RCPT TO command"),
				gm19Said(q(5), "b5@gmail.com", "deferred", "4.2.1", gm19MX, rate("s7"), "RCPT TO command")}},
			{q(6), ip(6), "bob@" + p + "login.example", []string{
				fmt.Sprintf("Dec  6 14:00:04 mx1 postfix/smtp[2113]: %s: to=<a6@gmail.com>, relay=smtp.gmail.com[142.250.102.108]:587, delay=1.2, delays=0.01/0/1.2/0, dsn=4.7.8, status=deferred (SASL authentication failed; server smtp.gmail.com[142.250.102.108] said: %s)", q(6), login)}},
			{q(7), ip(7), "bad@" + p + "badfrom.example", []string{gm19Said(q(7), "a7@gmail.com", "bounced", "5.1.7", gm19MX, badFrom("bad@"+p+"badfrom.example", "s8"), "MAIL FROM command")}},
			{q(8), ip(8), "bob@" + p + "iprate.example", []string{gm19Said(q(8), "a8@gmail.com", "bounced", "5.7.28", gm19MX, ipRate, "RCPT TO command")}},
		}
	}
	plain, welcomed := msgsFor("A", "203.0.113"), msgsFor("B", "198.51.100")
	dir := t.TempDir()
	mailLog := writeFile(t, dir, "mail.log", gm19Log(append(append([]gm19Msg{}, plain...), welcomed...)), 0o644)
	access := filepath.Join(dir, "sender_access")
	banLog := filepath.Join(dir, "bans.log")
	out := enforcerOnce(t, nil, enforcerArgs(mailLog, filepath.Join(dir, "state"), access,
		writeFile(t, dir, "welcomelist", "127.0.0.0/8\n198.51.100.0/24\n", 0o644), banLog, "127.0.0.1:9")...)
	compWantLines(t, out, []string{
		// The sender in the bracketed domain, or under it: blocked.
		`^\S+ block-domain domain=aspf\.example queue=A01A0B1C2D client=203\.0\.113\.11 .*rule=gmail-spf-domain-rate`,
		`^\S+ block-domain domain=adkim\.example queue=A02A0B1C2D client=203\.0\.113\.12 .*rule=gmail-dkim-domain-rate`,
		// Another domain's signature replayed: reported, nothing blocked.
		`^\S+ report queue=A03A0B1C2D client=203\.0\.113\.13 .*why="the upstream names asigner\.example, not the envelope sender's domain`,
		`^\S+ ban client=203\.0\.113\.14 prefix=\S+ queue=A04A0B1C2D .*rule=gmail-same-message-id`,
		`^\S+ pace queue=A05A0B1C2D .* to=<a5@gmail\.com> .*stage=rcpt rule=gmail-receiving-too-quickly`,
		`^\S+ pace queue=A05A0B1C2D .* to=<b5@gmail\.com> .*stage=rcpt rule=gmail-receiving-too-quickly`,
		`^\S+ alert queue=A06A0B1C2D .*stage=auth rule=gmail-auth-rejected`,
		// 553 5.1.7 at MAIL FROM: encapsulate (here without a backup
		// mailbox, so reported), never a sanction.
		`^\S+ report queue=A07A0B1C2D .*rule=gmail-invalid-sender-address why="no backup mailbox`,
		`^\S+ report queue=B01A0B1C2D .*why="no backup mailbox`,
		`^\S+ report queue=B02A0B1C2D .*why="no backup mailbox`,
		`^\S+ report queue=B03A0B1C2D .*why="no backup mailbox`,
		`^\S+ report queue=B04A0B1C2D .*why="no backup mailbox`,
		`^\S+ pace queue=B05A0B1C2D .* to=<a5@gmail\.com> `,
		`^\S+ pace queue=B05A0B1C2D .* to=<b5@gmail\.com> `,
		`^\S+ report queue=B07A0B1C2D .*why="no backup mailbox`,
	})
	if n := strings.Count(out, " ban "); n != 1 {
		t.Errorf("%d bans; want one, of 203.0.113.14 (two deferrals of one message):\n%s", n, out)
	}
	if strings.Contains(out, "queue=A08") || strings.Contains(out, "queue=B08") {
		t.Errorf("the IP-rate refusal at RCPT, before the content, was acted on:\n%s", out)
	}
	compWantBans(t, banLog, "203.0.113.14")
	b, _ := os.ReadFile(access)
	got := regexp.MustCompile(`(?m)^[^#\s]\S*`).FindAllString(string(b), -1)
	if strings.Join(got, " ") != "aspf.example adkim.example" {
		t.Errorf("sender_access blocks %q; want only aspf.example and adkim.example:\n%s", got, b)
	}
}

// TestGm19RelaySmarthostLoginRefused: smtp.gmail.com as the relay's
// smarthost refusing its login with each of gmail-replies.md's replies
// (535-5.7.8, 534-5.7.9, 534-5.7.14, 454 4.7.0), multi-line as Gmail
// sends them: an alert for the administrator, the mail kept queued,
// nobody banned or blocked, for a client that is not welcomelisted and
// for one that is.
func TestGm19RelaySmarthostLoginRefused(t *testing.T) {
	t.Parallel()
	replies := map[string]string{
		"535":    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1 - gsmtp",
		"534-9":  "534-5.7.9 Application-specific password required. For more information, go to\r\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor a2 - gsmtp",
		"534-14": "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1>\r\n534-5.7.14 Please log in through your web browser and then try again.\r\n534-5.7.14  Learn more at\r\n534 5.7.14  https://support.google.com/mail/answer/78754 a3 - gsmtp",
		"454":    "454 4.7.0 Too many login attempts, please try again later. a4 - gsmtp",
	}
	for name, rep := range replies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := newRawUpstream(t)
			up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN LOGIN"} }
			up.authReply = rep
			sec := writeFile(t, t.TempDir(), "client.secrets", "client plain relay@gmail.com app-password-1\n", 0o600)
			cfg := "[enforce]\nban_delay = \"0s\"\ntrusted_upstreams = [\"127.0.0.1\"]\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n"
			r := startEnforcer(t, up.addr(), enforceOpts{config: cfg, welcome: "127.0.5.0/24\n", extra: []string{"--client-auth", sec}})
			for _, ip := range []string{"127.0.4.20", "127.0.5.20"} {
				from := "s@" + strings.ReplaceAll(ip, ".", "-") + ".example"
				tx, err := sendFrom(r.addr(), ip, from, []string{"r@gmail.test"}, gmailMessage(from, "login "+ip))
				if err != nil || tx.Final.code() != 250 {
					t.Fatalf("%s: send: %v %+v", ip, err, tx)
				}
				id := queuedID(t, tx.Final)
				r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
				waitFor(5*time.Second, func() bool { return msgState(r.spool, id) == "ready" })
				if s := msgState(r.spool, id); s != "ready" {
					t.Errorf("%s: message %s is %s; want it kept queued", ip, id, s)
				}
			}
			time.Sleep(300 * time.Millisecond)
			if len(r.events("alert")) == 0 && len(r.events("admin-alert")) == 0 {
				t.Errorf("no alert for the smarthost's refused login")
			}
			for _, ev := range []string{"ban", "block", "encapsulate"} {
				for _, e := range r.events(ev) {
					t.Errorf("a refused login at the smarthost gave a %s line: %v", ev, e.Fields)
				}
			}
		})
	}
}

// TestGm19RelayBracketedDomain: Gmail's "your DKIM domain [d 30]" at the
// final dot, given to a relay that stores and forwards and to a proxy:
// with the envelope sender under d, d is blocked; with a sender of
// another domain (another's signed message replayed), nothing is blocked
// and the refusal is reported. A welcomelisted client is never blocked.
func TestGm19RelayBracketedDomain(t *testing.T) {
	t.Parallel()
	dkim := func(d string) string {
		return gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited email originating from your DKIM domain ["+d+" 30]. To protect our users from spam, email sent from your DKIM domain has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError")
	}
	for _, proxy := range []bool{false, true} {
		t.Run(fmt.Sprint("proxy=", proxy), func(t *testing.T) {
			t.Parallel()
			gmail := newFakeGmail(t)
			gmail.answer("own@gmail.test", stData, dkim("own19.example"))
			gmail.answer("replay@gmail.test", stData, dkim("signer19.example"))
			gmail.answer("wown@gmail.test", stData, dkim("wown19.example"))
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, welcome: "127.0.5.0/24\n",
				config: "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n"})
			for _, c := range []struct{ ip, from, to string }{
				{"127.0.4.31", "bob@news.own19.example", "own@gmail.test"},
				{"127.0.4.32", "bob@replayer19.example", "replay@gmail.test"},
				{"127.0.5.33", "bob@wown19.example", "wown@gmail.test"},
			} {
				if _, err := sendFrom(r.addr(), c.ip, c.from, []string{c.to}, gmailMessage(c.from, "dkim "+c.ip)); err != nil {
					t.Fatalf("%s: %v", c.ip, err)
				}
				if gmail.lastSent(c.to) == "" {
					waitFor(10*time.Second, func() bool { return gmail.lastSent(c.to) != "" })
				}
			}
			waitFor(10*time.Second, func() bool { return len(enforceEvents(r, "127.0.5.33")) > 0 })
			time.Sleep(300 * time.Millisecond)
			if es := enforceEvents(r, "127.0.4.31"); len(es) != 1 || es[0].Event != "block" || es[0].Get("domain") != "own19.example" {
				t.Errorf("sender under the bracketed domain: %v; want one block of own19.example", fieldsOf(es))
			}
			if es := enforceEvents(r, "127.0.4.32"); len(es) != 1 || es[0].Event != "report" {
				t.Errorf("sender not in the bracketed domain: %v; want one report", fieldsOf(es))
			}
			for _, e := range r.events("block") {
				if e.Get("domain") != "own19.example" {
					t.Errorf("blocked %v", e.Fields)
				}
			}
			for _, e := range enforceEvents(r, "127.0.5.33") {
				if e.Event == "block" || e.Event == "ban" {
					t.Errorf("welcomelisted client sanctioned: %v", e.Fields)
				}
			}
		})
	}
}

// TestGm19BanAtDataCommandBansNobody: Gmail's "unusual rate of
// unsolicited mail originating from your IP address" given in reply to
// the DATA command, before the content went, is about the relay's address
// as it is at MAIL FROM or RCPT TO: nobody is banned, the mail is kept
// (the relay storing and forwarding paces the destination); the same
// reply at the final dot still bans. Through the relay, storing and
// forwarding and as a proxy, and through postfix-enforcer (Postfix's
// "(in reply to DATA command)").
func TestGm19BanAtDataCommandBansNobody(t *testing.T) {
	t.Parallel()
	ipRate := gmailReply("421", "4.7.0", "[192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.")
	t.Run("relay", func(t *testing.T) {
		t.Parallel()
		fake := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if st == harness.StageData && strings.Contains(strings.Join(tx.To(), ","), "cmd@") {
				return harness.Response{Reply: strings.ReplaceAll(ipRate, "{id}", "d1")}
			}
			if st == harness.StageEndOfData && strings.Contains(strings.Join(tx.To(), ","), "dot@") {
				return harness.Response{Reply: strings.ReplaceAll(ipRate, "{id}", "d2")}
			}
			return harness.Response{}
		}})
		// The refusal before the content paces the destination: briefly.
		r := startEnforcer(t, fake.Addr(), enforceOpts{config: "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n" +
			"pace_suspend = \"1ms\"\npace_max_suspend = \"1ms\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\n"})
		ids := map[string]string{}
		for _, c := range [][2]string{{"127.0.4.41", "cmd@gmail.test"}, {"127.0.4.42", "dot@gmail.test"}} {
			ip, to := c[0], c[1]
			from := "s@" + strings.ReplaceAll(ip, ".", "-") + ".example"
			tx, err := sendFrom(r.addr(), ip, from, []string{to}, gmailMessage(from, "data "+ip))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("%s: %v %+v", ip, err, tx)
			}
			ids[ip] = queuedID(t, tx.Final)
			r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == ids[ip] })
		}
		time.Sleep(300 * time.Millisecond)
		if es := enforceEvents(r, "127.0.4.41"); len(es) != 0 {
			t.Errorf("refused at the DATA command: %v; want nothing (no content was read)", fieldsOf(es))
		}
		if es := enforceEvents(r, "127.0.4.42"); len(es) != 1 || es[0].Event != "ban" {
			t.Errorf("refused at the final dot: %v; want a ban", fieldsOf(es))
		}
		waitFor(5*time.Second, func() bool { return msgState(r.spool, ids["127.0.4.41"]) == "ready" })
		if s := msgState(r.spool, ids["127.0.4.41"]); s != "ready" {
			t.Errorf("message refused at the DATA command is %s; want it kept queued", s)
		}
	})
	t.Run("proxy", func(t *testing.T) {
		t.Parallel()
		fake := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
			to := strings.Join(tx.To(), ",")
			if st == harness.StageData && strings.Contains(to, "cmd@") || st == harness.StageEndOfData && strings.Contains(to, "dot@") {
				return harness.Response{Reply: strings.ReplaceAll(ipRate, "{id}", "x1")}
			}
			return harness.Response{}
		}})
		// The refusal at the DATA command paces the proxy: the next
		// client must reach Gmail all the same here.
		r := startEnforcer(t, fake.Addr(), enforceOpts{proxy: true, config: "[enforce]\nban_delay = \"0s\"\n" + gm27NoPause})
		for _, c := range [][2]string{{"127.0.6.41", "cmd@gmail.test"}, {"127.0.6.42", "dot@gmail.test"}} {
			tx, _ := sendFrom(r.addr(), c[0], "s@p.example", []string{c[1]}, gmailMessage("s@p.example", "proxy "+c[0]))
			if tx.Final.code()/100 == 2 {
				t.Errorf("%s: the client heard %q; want the refusal", c[0], tx.Final)
			}
		}
		waitFor(5*time.Second, func() bool { return len(enforceEvents(r, "127.0.6.42")) > 0 })
		time.Sleep(300 * time.Millisecond)
		if es := enforceEvents(r, "127.0.6.41"); len(es) != 0 {
			t.Errorf("proxied, refused at the DATA command: %v; want nothing (no content was sent)", fieldsOf(es))
		}
		if es := enforceEvents(r, "127.0.6.42"); len(es) != 1 || es[0].Event != "ban" {
			t.Errorf("proxied, refused at the final dot: %v; want a ban", fieldsOf(es))
		}
	})
	t.Run("postfix-enforcer", func(t *testing.T) {
		t.Parallel()
		reply := strings.ReplaceAll(strings.ReplaceAll(ipRate, "{id}", "p1"), "\r\n", " ")
		msgs := []gm19Msg{
			{"C01A0B1C2D", "203.0.113.41", "bob@c41.example", []string{gm19Said("C01A0B1C2D", "cmd@gmail.com", "deferred", "4.7.0", gm19MX, reply, "DATA command")}},
			{"C02A0B1C2D", "203.0.113.42", "bob@c42.example", []string{gm19Said("C02A0B1C2D", "dot@gmail.com", "deferred", "4.7.0", gm19MX, reply, "end of DATA command")}},
		}
		dir := t.TempDir()
		banLog := filepath.Join(dir, "bans.log")
		out := enforcerOnce(t, nil, enforcerArgs(writeFile(t, dir, "mail.log", gm19Log(msgs), 0o644), filepath.Join(dir, "state"),
			filepath.Join(dir, "sender_access"), writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9")...)
		if strings.Contains(out, "queue=C01") {
			t.Errorf("refused in reply to the DATA command, acted on:\n%s", out)
		}
		compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.42 prefix=\S+ queue=C02A0B1C2D `})
		compWantBans(t, banLog, "203.0.113.42")
	})
}

// TestGm19EnforceTestDataCommand: "relaykeeper enforce test" over a
// Postfix line "(in reply to DATA command)" prints the verdict word, ban,
// and what the client hears as the relay now does it: Gmail's 421
// unchanged (nobody is sanctioned before the content), not the 554 the
// filter makes of it at the final dot.
func TestGm19EnforceTestDataCommand(t *testing.T) {
	t.Parallel()
	line := "host gmail-smtp-in.l.google.com[142.250.102.27] said: " + strings.ReplaceAll(strings.ReplaceAll(gmailReply("421", "4.7.0",
		"[192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."), "{id}", "t1"), "\r\n", " ")
	for stage, hears := range map[string]string{"DATA": "client hears: 421-4.7.0 ", "end of DATA": "client hears: 554 5.7.0 ", "RCPT TO": "client hears: 421-4.7.0 "} {
		out, errOut, code := runBinary(t, harness.Binary(t), "", "enforce", "test", line+" (in reply to "+stage+" command)")
		if code != 0 || !strings.HasPrefix(out, "ban (rule gmail-ip-rate)") || !strings.Contains(out, hears) {
			t.Errorf("in reply to %s: exit %d\n%s%s\nwant the verdict ban and %q", stage, code, out, errOut, hears)
		}
	}
}

// TestGm19CompanionOneBanPerRefusal: Gmail refuses a three-recipient
// message once, at its final dot; Postfix logs the refusal for each
// recipient. postfix-enforcer banned the client three times (three ban
// lines, three fail2ban lines), where the relay bans once per refusal
// (docs/enforce.md). Once now; another message's refusal bans again.
func TestGm19CompanionOneBanPerRefusal(t *testing.T) {
	t.Parallel()
	spam := gm19Fold("550", "5.7.1", "[192.0.2.10 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", "y1")
	var msgs []gm19Msg
	for _, q := range []string{"E01A0B1C2D", "E02A0B1C2D"} {
		m := gm19Msg{q, "203.0.113.71", "bob@e71.example", nil}
		for _, to := range []string{"a", "b", "c"} {
			m.deliveries = append(m.deliveries, gm19Said(q, to+"@gmail.com", "bounced", "5.7.1", gm19MX, spam, "end of DATA command"))
		}
		msgs = append(msgs, m)
	}
	dir := t.TempDir()
	banLog := filepath.Join(dir, "bans.log")
	out := enforcerOnce(t, nil, enforcerArgs(writeFile(t, dir, "mail.log", gm19Log(msgs), 0o644), filepath.Join(dir, "state"),
		filepath.Join(dir, "sender_access"), writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9")...)
	for _, q := range []string{"E01A0B1C2D", "E02A0B1C2D"} {
		if n := len(regexp.MustCompile(`(?m)^\S+ ban client=203\.0\.113\.71 prefix=\S+ queue=`+q+` `).FindAllString(out, -1)); n != 1 {
			t.Errorf("queue %s: %d ban lines; want 1:\n%s", q, n, out)
		}
	}
	compWantBans(t, banLog, "203.0.113.71", "203.0.113.71")
}
