package e2e

// Outside review of the relay's delivery status notifications against
// Postfix's bounce(8): refusals at each stage of the upstream transaction,
// the null sender, oversized originals.

import (
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// revDSNNotice waits for the notice the fake upstream got for rcpt (from
// <>) and parses it.
func revDSNNotice(t *testing.T, fake *harness.FakeSMTP, rcpt string) dsnNotice {
	t.Helper()
	var data []byte
	waitFor(15*time.Second, func() bool {
		for _, tx := range txsFrom(fake, "") {
			if tx.Accepted() && len(tx.To()) == 1 && tx.To()[0] == rcpt {
				data = tx.Data
				return true
			}
		}
		return false
	})
	if data == nil {
		t.Fatalf("no notice reached the upstream for %s", rcpt)
	}
	return parseNotice(t, string(data))
}

// TestRevDSNStages: the upstream refuses at MAIL, RCPT, DATA and the final
// dot, with multi-line replies. Each notice says, as Postfix's does, which
// host said what "(in reply to ... command)", and its delivery-status
// carries the reply whole, the Remote-MTA, Arrival-Date and
// Last-Attempt-Date.
func TestRevDSNStages(t *testing.T) {
	t.Parallel()
	const (
		mailRefused = "553-5.7.1 sender rejected\r\n553 5.7.1 see https://example.net/why"
		rcptRefused = "550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please try again."
		dataRefused = "554 5.5.1 no valid recipients here"
		dotRefused  = "552-5.3.4 message too big\r\n552 5.3.4 for this host"
	)
	fake := harness.NewFakeSMTP(t, harness.Script{
		Hostname: "mx.upstream.test",
		RcptFor:  map[string]harness.Response{"bad@example.net": {Reply: rcptRefused}},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			switch {
			case stage == harness.StageMail && arg == "mail@x.example":
				return harness.Response{Reply: mailRefused}
			case stage == harness.StageData && tx.MailFrom == "data@x.example":
				return harness.Response{Reply: dataRefused}
			case stage == harness.StageEndOfData && tx.MailFrom == "dot@x.example":
				return harness.Response{Reply: dotRefused}
			}
			return harness.Response{}
		},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	cases := []struct {
		from, to, reply, stage, status string
	}{
		{"mail@x.example", "ok@example.net", mailRefused, "MAIL FROM", "5.7.1"},
		{"rcpt@x.example", "bad@example.net", rcptRefused, "RCPT TO", "5.1.1"},
		{"data@x.example", "ok@example.net", dataRefused, "DATA", "5.5.1"},
		{"dot@x.example", "ok@example.net", dotRefused, "end of DATA", "5.3.4"},
	}
	for _, c := range cases {
		mustSend(t, r.addr(), c.from, []string{c.to}, message("stage "+c.stage))
	}
	for _, c := range cases {
		t.Run(c.stage, func(t *testing.T) {
			n := revDSNNotice(t, fake, c.from)
			oneLine := strings.ReplaceAll(c.reply, "\r\n", " ")
			text := strings.Join(strings.Fields(n.Bodies[0]), " ")
			want := "<" + c.to + ">: host 127.0.0.1 said: " + oneLine + " (in reply to " + c.stage + " command)"
			if !strings.Contains(text, want) {
				t.Errorf("notice text lacks %q:\n%s", want, n.Bodies[0])
			}
			if len(n.PerRecipient) != 1 {
				t.Fatalf("%d recipient groups; want 1\n%s", len(n.PerRecipient), n.Bodies[1])
			}
			g := n.PerRecipient[0]
			for name, want := range map[string]string{
				"Final-Recipient": "rfc822; " + c.to,
				"Action":          "failed",
				"Status":          c.status,
				"Remote-MTA":      "dns; 127.0.0.1",
				"Diagnostic-Code": "smtp; " + oneLine,
			} {
				if got := dsnField(g, name); got != want {
					t.Errorf("%s: %q; want %q", name, got, want)
				}
			}
			if !g.Has("Last-Attempt-Date") {
				t.Errorf("no Last-Attempt-Date:\n%s", n.Bodies[1])
			}
			if !n.PerMessage.Has("Arrival-Date") {
				t.Errorf("no Arrival-Date:\n%s", n.Bodies[1])
			}
			t.Logf("notice:\n%s\n%s", n.Bodies[0], n.Bodies[1])
		})
	}
}

// TestRevDSNRoutedRemoteMTA: a recipient that transport_maps sends to a
// host other than the smarthost, which refuses it. The notice (sent on
// through the smarthost) names the host that said it, as Postfix's
// "host NAME[IP] said:" and Remote-MTA, not the smarthost.
func TestRevDSNRoutedRemoteMTA(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bob@other.example>: no such user"
	smarthost := harness.NewFakeSMTP(t, harness.Script{Hostname: "smarthost.test"})
	other := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.other.test",
		RcptFor: map[string]harness.Response{"bob@other.example": {Reply: refused}}})
	const goAway = "554 5.7.1 mx.greet.test does not talk to you"
	greet := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.greet.test", Greeting: harness.Response{Reply: goAway}})
	dns := harness.StartDNS(t, "mx.other.test. A 127.0.0.1\nmx.greet.test. A 127.0.0.1\n")
	_, port, _ := strings.Cut(other.Addr(), ":")
	_, gport, _ := strings.Cut(greet.Addr(), ":")
	// A 5xx greeting fails the mail only with smtp_skip_5xx_greeting
	// off; by default it waits (TestSkip5xxGreeting).
	cfg := "[delivery]\nsmtp_skip_5xx_greeting = false\n[routing]\ndns_server = \"" + dns.Addr() + "\"\n" +
		"transport_maps = [\"inline:{ other.example=smtp:[mx.other.test]:" + port +
		" greet.example=smtp:[mx.greet.test]:" + gport + " }\"]\n"
	r := opsRelay(t, smarthost.Addr(), cfg, "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@x.example", []string{"bob@other.example"}, message("routed"))
	mustSend(t, r.addr(), "carol@x.example", []string{"dan@greet.example"}, message("greeting"))
	n := revDSNNotice(t, smarthost, "carol@x.example")
	if text := strings.Join(strings.Fields(n.Bodies[0]), " "); !strings.Contains(text, "<dan@greet.example>: host mx.greet.test[127.0.0.1] said: "+goAway) {
		t.Errorf("greeting refusal: notice text does not name mx.greet.test:\n%s", n.Bodies[0])
	}
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Remote-MTA") != "dns; mx.greet.test" {
		t.Errorf("greeting refusal: delivery status does not name mx.greet.test:\n%s", n.Bodies[1])
	}
	n = revDSNNotice(t, smarthost, "alice@x.example")
	text := strings.Join(strings.Fields(n.Bodies[0]), " ")
	want := "<bob@other.example>: host mx.other.test[127.0.0.1] said: " + refused + " (in reply to RCPT TO command)"
	if !strings.Contains(text, want) {
		t.Errorf("notice text lacks %q:\n%s", want, n.Bodies[0])
	}
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	if got := dsnField(n.PerRecipient[0], "Remote-MTA"); got != "dns; mx.other.test" {
		t.Errorf("Remote-MTA: %q; want \"dns; mx.other.test\"", got)
	}
}

// TestRevDSNReturnedOriginal: what a failure notice returns and to whom.
// A null-sender message refused brings no notice; NOTIFY=SUCCESS alone
// brings none on failure; an 8-bit original comes back whole, 8bit; one
// larger than bounce_size_limit comes back as its header section only.
func TestRevDSNReturnedOriginal(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 no such user"
	r, fake := opsRefusingRelay(t, refused, "SMTPUTF8")

	_, final := opsSend(t, r.addr(), "c.test", "<>", []string{"<bad@example.net>"}, message("null"))
	idNull := queuedID(t, final)
	_, final = opsSend(t, r.addr(), "c.test", "<succ@x.example>", []string{"<bad@example.net> NOTIFY=SUCCESS"}, message("success only"))
	idSucc := queuedID(t, final)
	eight := "From: <e@x.example>\nSubject: =?utf-8?q?h=C3=A9?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCaf\u00e9 cr\u00e8me.\n"
	_, final = opsSend(t, r.addr(), "c.test", "<e@x.example> BODY=8BITMIME", []string{"<bad@example.net>"}, eight)
	queuedID(t, final)
	big := "From: <big@x.example>\nSubject: big\n\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n", 2000)
	_, final = opsSend(t, r.addr(), "c.test", "<big@x.example>", []string{"<bad@example.net>"}, big)
	queuedID(t, final)

	n := revDSNNotice(t, fake, "e@x.example")
	if len(n.Types) != 3 || n.Types[2] != "message/rfc822" || !strings.Contains(n.Bodies[2], "Caf\u00e9 cr\u00e8me.") {
		t.Errorf("8-bit original: parts %q; want it returned whole as message/rfc822\n%s", n.Types, strings.Join(n.Bodies, "\n--\n"))
	}
	if cte := n.Header.Get("Content-Transfer-Encoding"); cte != "8bit" {
		t.Errorf("8-bit notice Content-Transfer-Encoding %q; want 8bit", cte)
	}
	n = revDSNNotice(t, fake, "big@x.example")
	if len(n.Types) != 3 || n.Types[2] != "text/rfc822-headers" || subjectOf(n.Bodies[2]) != "big" || len(n.Bodies[2]) > 1000 {
		t.Errorf("big original: parts %q, returned %d bytes; want its headers only", n.Types, len(n.Bodies[2]))
	}
	for _, id := range []string{idNull, idSucc} {
		waitOpsSpool(t, r.spool, 10*time.Second, id+" failed", func(f map[string][]string) bool {
			return len(f[id]) == 2 && f[id][1] == "envelope.bad"
		})
		if ns := opsNotices(r, id); len(ns) != 0 {
			t.Errorf("message %s: notices %v; want none", id, ns[0].Fields)
		}
	}
	for _, tx := range txsFrom(fake, "") {
		if to := tx.To(); len(to) == 1 && to[0] != "e@x.example" && to[0] != "big@x.example" {
			t.Errorf("a notice went to %q", to)
		}
	}
}

// TestRevDSNDelayWarning: delay_warning sends one warning, however many
// retries follow, to the recipients whose NOTIFY asks for it (DELAY, or
// none given), saying who said what in reply to which command and until
// when the relay keeps trying.
func TestRevDSNDelayWarning(t *testing.T) {
	t.Parallel()
	const busy = "451-4.2.0 mailbox busy\r\n451 4.2.0 try again later"
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 52428800"},
		Rcpt:         harness.Response{Reply: busy},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage == harness.StageRcpt && tx.MailFrom == "" {
				return harness.Response{Reply: "250 2.1.5 Ok"}
			}
			return harness.Response{}
		},
	})
	cfg := "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\nmax_queue_lifetime = \"1h\"\ndelay_warning = \"1s\"\n"
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1", "--forward-on-disconnect")
	_, final := opsSend(t, r.addr(), "c.test", "<w@x.example> ENVID=env-42",
		[]string{"<d1@example.net> NOTIFY=DELAY", "<d2@example.net> NOTIFY=FAILURE", "<d3@example.net>"}, message("delayed"))
	id := queuedID(t, final)
	n := revDSNNotice(t, fake, "w@x.example")
	// Three more attempts at least, each of which could warn again.
	waitFor(15*time.Second, func() bool { return len(txsFrom(fake, "w@x.example")) >= 5 })
	if got := len(txsFrom(fake, "w@x.example")); got < 5 {
		t.Fatalf("%d attempts; want 5 or more", got)
	}
	if ns := opsNotices(r, id); len(ns) != 1 || ns[0].Get("kind") != "delay" || ns[0].Get("nrcpt") != "2" {
		t.Errorf("notices about %s: %d; want one delay warning about 2 recipients", id, len(ns))
	}
	if got := n.Header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject %q", got)
	}
	if got := dsnField(n.PerMessage, "Original-Envelope-Id"); got != "env-42" {
		t.Errorf("Original-Envelope-Id %q; want env-42", got)
	}
	var got []string
	for _, g := range n.PerRecipient {
		got = append(got, dsnField(g, "Final-Recipient"))
		for name, want := range map[string]string{
			"Action":          "delayed",
			"Status":          "4.2.0",
			"Diagnostic-Code": "smtp; " + strings.ReplaceAll(busy, "\r\n", " "),
			"Remote-MTA":      "dns; 127.0.0.1",
		} {
			if v := dsnField(g, name); v != want {
				t.Errorf("%s %s: %q; want %q", dsnField(g, "Final-Recipient"), name, v, want)
			}
		}
		wru, err := gomessageDate(g.Get("Will-Retry-Until"))
		if err != nil || wru.Before(time.Now().Add(55*time.Minute)) || wru.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("Will-Retry-Until %q (%v); want about an hour after arrival", g.Get("Will-Retry-Until"), err)
		}
	}
	if strings.Join(got, ",") != "rfc822; d1@example.net,rfc822; d3@example.net" {
		t.Errorf("warned recipients %q; want d1 (NOTIFY=DELAY) and d3 (no NOTIFY)", got)
	}
	text := strings.Join(strings.Fields(n.Bodies[0]), " ")
	for _, want := range []string{
		"THIS IS A WARNING ONLY.",
		"It will be retried until it is 1 hour(s) old.",
		"<d1@example.net>: host 127.0.0.1 said: " + strings.ReplaceAll(busy, "\r\n", " ") + " (in reply to RCPT TO command)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("warning text lacks %q:\n%s", want, n.Bodies[0])
		}
	}
	if len(n.Types) != 3 || n.Types[2] != "text/rfc822-headers" {
		t.Errorf("warning parts %q; want the original's headers only (no RET: Postfix returns headers in a warning)", n.Types)
	}
}

func gomessageDate(s string) (time.Time, error) {
	return mail.ParseDate(s)
}

// TestRevDSNEightBitToSevenBitUpstream: a notice returning an 8-bit
// original, sent on to an upstream without 8BITMIME, is converted to 7 bits
// (the original's body quoted-printable), and still parses.
func TestRevDSNEightBitToSevenBitUpstream(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "ENHANCEDSTATUSCODES"},
		RcptFor:      map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 no such user"}},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	eight := "From: <e@x.example>\nSubject: eight\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCaf\u00e9 cr\u00e8me.\n"
	_, final := opsSend(t, r.addr(), "c.test", "<e@x.example> BODY=8BITMIME", []string{"<bad@example.net>"}, eight)
	queuedID(t, final)
	n := revDSNNotice(t, fake, "e@x.example")
	for _, tx := range txsFrom(fake, "") {
		for i, c := range tx.Data {
			if c >= 0x80 {
				t.Errorf("notice to a 7-bit upstream has an 8-bit byte at %d:\n%s", i, tx.Data)
				break
			}
		}
	}
	if len(n.Types) != 3 || n.Types[2] != "message/rfc822" || !strings.Contains(n.Bodies[2], "Caf=C3=A9 cr=C3=A8me.") {
		t.Errorf("returned original: parts %q; want message/rfc822 with a quoted-printable body\n%s", n.Types, strings.Join(n.Bodies, "\n--\n"))
	}
}

// TestRevDSNUTF8Sender: a message from a UTF-8 address (SMTPUTF8) that
// fails brings its sender a notice, sent with SMTPUTF8.
func TestRevDSNUTF8Sender(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"},
		RcptFor:      map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 no such user"}},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	const sender = "j\u00f6s\u00e9@x.example"
	msg := "From: <" + sender + ">\nSubject: utf8 sender\n\nhi\n"
	_, final := opsSend(t, r.addr(), "c.test", "<"+sender+"> SMTPUTF8 BODY=8BITMIME", []string{"<bad@example.net>"}, msg)
	queuedID(t, final)
	n := revDSNNotice(t, fake, sender)
	txs := txsFrom(fake, "")
	if len(txs) != 1 || !strings.Contains(txs[0].MailParams, "SMTPUTF8") {
		t.Errorf("notice transactions %d, MAIL params %q; want one with SMTPUTF8", len(txs), txs[0].MailParams)
	}
	if got := n.Header.Get("To"); got != sender {
		t.Errorf("notice To %q; want %q", got, sender)
	}
	if len(n.Types) != 3 || n.Types[2] != "message/global" {
		t.Errorf("notice parts %q; want the original as message/global (RFC 6533)", n.Types)
	}
}

// TestRevDSNParamsRefused: DSN parameters the relay could not pass on
// intact are refused at the edge, as Postfix's smtpd refuses them, rather
// than accepted and then refused by an upstream that checks, which would
// bounce the whole message: a parameter given twice (go-smtp kept the
// last), an ENVID over 100 characters, an ORCPT over 500 (RFC 3461).
func TestRevDSNParamsRefused(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{})
	r := opsRelay(t, fake.Addr(), "")
	c := mustDial(t, r.addr(), "")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO c.test")
	for _, tt := range []struct{ cmd, want string }{
		{"MAIL FROM:<a@x.example> RET=HDRS RET=FULL", "501"},
		{"MAIL FROM:<a@x.example> ENVID=" + strings.Repeat("e", 101), "501"},
		{"MAIL FROM:<a@x.example> ENVID=" + strings.Repeat("e", 100), "250"},
		{"RCPT TO:<b@example.net> NOTIFY=FAILURE NOTIFY=DELAY", "501"},
		{"RCPT TO:<b@example.net> ORCPT=rfc822;" + strings.Repeat("o", 500) + "@example.net", "501"},
		{"RCPT TO:<b@example.net> NOTIFY=success,delay ORCPT=rfc822;b@example.net", "250"},
	} {
		rep, err := c.cmd("%s", tt.cmd)
		if err != nil {
			t.Fatalf("%.60s: %v", tt.cmd, err)
		}
		if got := strings.SplitN(strings.Join(rep, " "), " ", 2)[0]; got != tt.want {
			t.Errorf("%.60s... = %q; want %s", tt.cmd, rep, tt.want)
		}
	}
}
