package e2e

// Outside review (rev-dsn4) of what becomes of a message after it is
// accepted: notices, lifetimes, and the queue commands on a live spool.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevDSN4DuplicateRecipient: a client names a recipient twice, first
// with NOTIFY=NEVER and then without NOTIFY, and another one twice alike.
// Postfix's cleanup drops the exact duplicate and keeps the second
// request for a notice. The relay used to keep both copies of each: the
// upstream got RCPT TO twice for the same mailbox (a second copy from an
// upstream that does not merge them), and since the envelope keeps DSN
// parameters by address, the second recipient's request became the
// first's NOTIFY=NEVER: the upstream's 550 for it reached the sender as
// nothing at all.
func TestRevDSN4DuplicateRecipient(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 <bad@example.net>: no such user"}},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	_, final := opsSend(t, r.addr(), "client.test", "<alice@example.org>",
		[]string{"<ok@example.net>", "<bad@example.net> NOTIFY=NEVER", "<ok@example.net>", "<bad@example.net>"}, message("twice"))
	if final.code() != 250 {
		t.Fatalf("final reply %q", final)
	}
	n := revDSNNotice(t, fake, "alice@example.org")
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Final-Recipient") != "rfc822; bad@example.net" {
		t.Errorf("notice reports %d recipients; want bad@example.net once:\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	for _, tx := range txsFrom(fake, "alice@example.org") {
		var to []string
		for _, rc := range tx.Rcpts {
			to = append(to, rc.Addr)
		}
		if want := []string{"ok@example.net", "bad@example.net"}; !slices.Equal(to, want) {
			t.Errorf("upstream got RCPT TO %q; want each recipient once, %q", to, want)
		}
	}
	time.Sleep(time.Second)
	if ns := opsNotices(r, ""); len(ns) != 1 {
		t.Errorf("%d notices; want 1", len(ns))
	}
	if d := deliveries(r.events("delivery"), "ok@example.net", "sent"); len(d) != 1 {
		t.Errorf("%d deliveries to ok@example.net logged; want 1\n%s", len(d), strings.TrimSpace(r.stderr()))
	}
}

// TestRevDSN4RelayedNoticeRetFull: NOTIFY=SUCCESS with RET=FULL, relayed
// to an upstream without DSN. The "relayed" notice returns the original's
// headers only (RFC 3461 section 4.3: RET is for failure notices; Postfix
// returns headers with every success or delay notice), not the message
// with its attachments.
func TestRevDSN4RelayedNoticeRetFull(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{}) // no DSN
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	body := message("attachment") + strings.Repeat("a large attachment line\n", 200)
	_, final := opsSend(t, r.addr(), "client.test", "<alice@example.org> RET=FULL",
		[]string{"<ok@example.net> NOTIFY=SUCCESS"}, body)
	if final.code() != 250 {
		t.Fatalf("final reply %q", final)
	}
	n := revDSNNotice(t, fake, "alice@example.org")
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Action") != "relayed" {
		t.Fatalf("not a relayed notice:\n%s", n.Bodies[1])
	}
	if len(n.Types) != 3 || n.Types[2] != "text/rfc822-headers" || strings.Contains(n.Bodies[2], "attachment line") {
		t.Errorf("relayed notice returns %q (%d bytes); want the headers only, text/rfc822-headers", n.Types, len(n.Bodies[len(n.Bodies)-1]))
	}
}

// revDSN4AliceFilter is a client filter that refuses alice's mail with
// reply (and passes everything else, the notices included).
func revDSN4AliceFilter(t *testing.T, reply string) string {
	return script(t, "refuse-alice", `grep -q '^X-MailRelay-From: alice@' "$2" || exit 0
echo '<<`+reply+`>>'
exit 1
`)
}

// TestRevDSN4ClientFilterRefusalBounces: a --client-filter that refuses
// a queued message fails it, as an upstream's 550 does; with bounces on
// (the default) the sender is told, as Postfix's pipe(8) puts a refusing
// filter's output in its bounce. The relay marked the message failed and
// told nobody.
func TestRevDSN4ClientFilterRefusalBounces(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect",
		"--client-filter", revDSN4AliceFilter(t, "550 5.7.1 not from here"))
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("filtered"))
	n := revDSNNotice(t, fake, "alice@example.org")
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Final-Recipient") != "rfc822; bob@example.net" ||
		dsnField(n.PerRecipient[0], "Action") != "failed" || dsnField(n.PerRecipient[0], "Status") != "5.7.1" ||
		!strings.Contains(dsnField(n.PerRecipient[0], "Diagnostic-Code"), "not from here") {
		t.Errorf("notice's delivery status:\n%s", n.Bodies[1])
	}
	// The smarthost never saw the message: the notice blames no host.
	if n.PerRecipient[0].Has("Remote-MTA") || strings.Contains(n.Bodies[0], " said:") {
		t.Errorf("notice blames the smarthost for the filter's refusal:\n%s\n%s", n.Bodies[0], n.Bodies[1])
	}
	if txs := txsFrom(fake, "alice@example.org"); len(txs) != 0 {
		t.Errorf("the upstream got %d of alice's messages; want none", len(txs))
	}
}

// TestRevDSN4ClientFilterDeferralExpires: a --client-filter that keeps
// answering 4xx defers the message like an upstream's 451, so the message
// ends after max_queue_lifetime with a failure notice, as any deferral
// does. The relay retried it for ever: no expiry, no notice.
func TestRevDSN4ClientFilterDeferralExpires(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{})
	cfg := `[delivery]
minimal_backoff_time = "1s"
maximal_backoff_time = "1s"
max_queue_lifetime = "3s"
`
	r := opsRelay(t, fake.Addr(), cfg, "--forward-on-disconnect", "--poll", "1",
		"--client-filter", revDSN4AliceFilter(t, "451 4.3.0 scanner busy"))
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("deferred by filter")).Final)
	waitOpsSpool(t, r.spool, 15*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
	// Expired, not refused: reason code 0, as for an upstream's
	// deferral that expired (E-MailRelay's tools read it).
	if codes := readEnvelope(t, filepath.Join(r.spool, id+".envelope.bad")).all("X-MailRelay-ReasonCode"); !slices.Equal(codes, []string{"0"}) {
		t.Errorf("X-MailRelay-ReasonCode %q; want 0", codes)
	}
	n := revDSNNotice(t, fake, "alice@example.org")
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Action") != "failed" ||
		!strings.Contains(n.Bodies[0], "expired") || !strings.Contains(dsnField(n.PerRecipient[0], "Diagnostic-Code"), "scanner busy") {
		t.Errorf("notice:\n%s\n%s", n.Bodies[0], n.Bodies[1])
	}
}

// TestRevDSN4UTF8OrcptToUpstream: an SMTPUTF8 client's ORCPT of RFC 6533's
// utf-8 type goes on to an upstream that offers DSN in that type's own
// encoding, utf-8-addr-xtext ("\x{F1}"). The relay wrote it in RFC 3461's
// rfc822 xtext ("+C3+B1"), which utf-8-addr-xtext does not have: Postfix
// keeps "+C3+B1" literally, and its own notices then name a recipient
// nobody gave.
func TestRevDSN4UTF8OrcptToUpstream(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	_, final := opsSend(t, r.addr(), "client.test", "<alice@example.org> SMTPUTF8",
		[]string{`<mañana@example.net> NOTIFY=FAILURE ORCPT=utf-8;Ma\x{F1}ana\x{2B}1\x{3D}@example.net`}, message("utf8 orcpt"))
	if final.code() != 250 {
		t.Fatalf("final reply %q", final)
	}
	waitFor(10*time.Second, func() bool { return len(txsFrom(fake, "alice@example.org")) > 0 })
	txs := txsFrom(fake, "alice@example.org")
	if len(txs) != 1 || len(txs[0].Rcpts) != 1 {
		t.Fatalf("upstream got %+v", txs)
	}
	params := strings.Fields(txs[0].Rcpts[0].Params)
	want := `ORCPT=utf-8;Ma\x{F1}ana\x{2B}1\x{3D}@example.net`
	if !slices.ContainsFunc(params, func(p string) bool { return strings.EqualFold(p, want) }) {
		t.Errorf("RCPT parameters %q; want %s", params, want)
	}
}

// TestRevDSN4SendmailDSNOptions: Postfix's sendmail takes -N (NOTIFY),
// -R (RET) and -V (ENVID), and a cron job's "sendmail -N never" means no
// notice whatever happens. The relay's sendmail took the values and
// ignored them ("as Postfix's sendmail does", said the docs): the
// upstream's 550 brought the sender a bounce, and a DSN upstream was
// given no NOTIFY, RET or ENVID.
func TestRevDSN4SendmailDSNOptions(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"},
		RcptFor:      map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 no such user"}},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect", "--poll", "1")
	waitForText(t, filepath.Join(r.spool, ".relaykeeper.pid"), "\n")
	conf := opsConfig(t, fmt.Sprintf("[spool]\ndir = %q\n", r.spool))
	sendmail := filepath.Join(sendmailNames(t), "sendmail")
	msg := "Subject: from cron\n\nnightly report\n"
	if out, errOut, code := runBinary(t, sendmail, msg, "-C", conf, "-N", "never", "-R", "hdrs", "-V", "nightly-42",
		"-f", "cron@example.org", "ok@example.net", "bad@example.net"); code != 0 {
		t.Fatalf("sendmail -N never -R hdrs -V = exit %d, %q %q", code, out, errOut)
	}
	waitFor(15*time.Second, func() bool { return len(txsFrom(fake, "cron@example.org")) > 0 })
	txs := txsFrom(fake, "cron@example.org")
	if len(txs) != 1 {
		t.Fatalf("upstream got %d transactions from cron@", len(txs))
	}
	if p := removeParam(txs[0].MailParams, "SIZE="); p != "RET=HDRS ENVID=nightly-42" {
		t.Errorf("MAIL parameters %q; want RET=HDRS ENVID=nightly-42", p)
	}
	for _, rc := range txs[0].Rcpts {
		if rc.Params != "NOTIFY=NEVER" {
			t.Errorf("RCPT TO:<%s> parameters %q; want NOTIFY=NEVER", rc.Addr, rc.Params)
		}
	}
	time.Sleep(2 * time.Second)
	if ns := opsNotices(r, ""); len(ns) != 0 || len(txsFrom(fake, "")) != 0 {
		t.Errorf("%d notices queued, %d sent; want none (-N never)", len(ns), len(txsFrom(fake, "")))
	}

	// A -R or -V that cannot be is a usage error, as Postfix's sendmail
	// says (EX_USAGE); nothing is queued. A bad -N is ignored with a
	// warning, as Postfix's is, and the message goes.
	for _, bad := range [][]string{{"-R", "most"}, {"-V", strings.Repeat("x", 101)}} {
		if _, errOut, code := runBinary(t, sendmail, msg, append([]string{"-C", conf}, append(bad, "ok@example.net")...)...); code != 64 {
			t.Errorf("sendmail %q = exit %d (%s); want 64", bad, code, errOut)
		}
	}
	if _, errOut, code := runBinary(t, sendmail, msg, "-C", conf, "-N", "never,success", "-f", "bad-n@example.org", "ok@example.net"); code != 0 ||
		!strings.Contains(errOut, "-N") {
		t.Errorf("sendmail -N never,success = exit %d, stderr %q; want 0 and a warning", code, errOut)
	}
	if !waitFor(10*time.Second, func() bool { return len(txsFrom(fake, "bad-n@example.org")) == 1 }) {
		t.Errorf("the message with a bad -N did not go")
	}
}

// TestRevDSN4PacedExpires: a destination that keeps telling the relay to
// slow down (421 4.7.0 "Try again later") is paused again before each
// message behind the first gets its turn; those messages are "not tried"
// every time. They still outlive max_queue_lifetime, and fail as expired,
// as Postfix bounces what is left of a message too old however its
// destination is throttled. The relay kept them queued for ever, untried,
// long past the lifetime.
func TestRevDSN4PacedExpires(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Mail: harness.Response{Reply: "421 4.7.0 Try again later, closing connection."},
	})
	// Everything in seconds; the notices (delay warnings too) are what
	// keep pausing the destination before the others' turns.
	cfg := "[delivery]\n" + strings.Join([]string{`minimal_backoff_time = "1s"`, `maximal_backoff_time = "1s"`,
		`max_queue_lifetime = "4s"`, `delay_warning = "2s"`, `pace_suspend = "1s"`, `pace_max_suspend = "1s"`,
		`pace_delay = "100ms"`, `pace_max_delay = "100ms"`}, "\n") + "\n"
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1")
	c := mustDial(t, r.addr(), "")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.test")
	var ids []string
	for _, f := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		mustCmd(t, c, "250", "MAIL FROM:<%s>", f)
		mustCmd(t, c, "250", "RCPT TO:<r@example.net>")
		mustCmd(t, c, "354", "DATA")
		ids = append(ids, queuedID(t, mustCmd(t, c, "250", "Subject: paced\r\n\r\nx\r\n.")))
	}
	waitOpsSpool(t, r.spool, 20*time.Second, "all three failed", func(f map[string][]string) bool {
		for _, id := range ids {
			if !slices.Equal(f[id], []string{"content", "envelope.bad"}) {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		env := readEnvelope(t, filepath.Join(r.spool, id+".envelope.bad"))
		if st := env.rcptStatus()["r@example.net"]; !strings.HasPrefix(st, "failed r@example.net message delivery expired after ") {
			t.Errorf("%s: r@: %q; want failed as expired", id, st)
		}
	}
}

// TestRevDSN4DelayWarningUntried: the smarthost says the account's daily
// quota is used up (550 5.4.5), so everything for it waits quota_window
// untried. A message that arrives meanwhile is still delayed, and its
// sender is warned after delay_warning, as Postfix warns about every
// recipient still queued then, and both fail after max_queue_lifetime. The
// relay looked at them again only when the window ended (24 hours by
// default, past any delay_warning and maybe the lifetime too), and even
// then warned only about recipients an attempt had deferred.
func TestRevDSN4DelayWarningUntried(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Rcpt: harness.Response{Reply: "550 5.4.5 Daily user sending limit exceeded."},
	})
	cfg := "[delivery]\nquota_window = \"1h\"\nmaximal_backoff_time = \"60s\"\ndelay_warning = \"1s\"\nmax_queue_lifetime = \"4s\"\n"
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1", "--forward-on-disconnect")
	first := queuedID(t, mustSend(t, r.addr(), "first@example.org", []string{"r@example.net"}, message("first")).Final)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == first })
	second := queuedID(t, mustSend(t, r.addr(), "second@example.org", []string{"r@example.net"}, message("second")).Final)
	e := r.waitEvent("notice", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == second })
	if e.Get("kind") != "delay" || e.Get("to") != "<second@example.org>" {
		t.Errorf("notice about %s: %v; want a delay warning to second@", second, e.Fields)
	}
	if e := r.waitEvent("notice", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == first }); e.Get("kind") != "delay" {
		t.Errorf("notice about %s: %v; want a delay warning to first@", first, e.Fields)
	}
	// And max_queue_lifetime ends the wait for both, as it ends any
	// deferral, however long the quota window.
	waitOpsSpool(t, r.spool, 10*time.Second, "both failed", func(f map[string][]string) bool {
		return slices.Equal(f[first], []string{"content", "envelope.bad"}) && slices.Equal(f[second], []string{"content", "envelope.bad"})
	})
	if n := len(txsFrom(fake, "second@example.org")); n != 0 {
		t.Errorf("the smarthost got %d of second@'s messages within its quota window; want none", n)
	}
}

// TestRevDSN4BounceSizeLimit: Postfix's bounce_size_limit (50000 by
// default) is delivery.bounce_size_limit: a failed message larger than it
// comes back as its headers only, a smaller one whole. The relay had the
// 50000 fixed, with no key for it: a Postfix administrator's
// bounce_size_limit had nowhere to go.
func TestRevDSN4BounceSizeLimit(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"bad@example.net": {Reply: "550 5.1.1 no such user"}},
	})
	r := opsRelay(t, fake.Addr(), "[delivery]\nbounce_size_limit = 2000\n", "--forward-on-disconnect")
	small := message("small")
	big := message("big") + strings.Repeat("a line of the attachment\n", 100)
	mustSend(t, r.addr(), "small@example.org", []string{"bad@example.net"}, small)
	mustSend(t, r.addr(), "big@example.org", []string{"bad@example.net"}, big)
	for sender, want := range map[string]string{"small@example.org": "message/rfc822", "big@example.org": "text/rfc822-headers"} {
		n := revDSNNotice(t, fake, sender)
		if len(n.Types) != 3 || n.Types[2] != want {
			t.Errorf("notice to %s returns %q; want %s (bounce_size_limit 2000)", sender, n.Types, want)
		}
	}
}

// TestRevDSN4EightBitReplyNotice: an upstream's refusal in UTF-8
// ("Benutzer unbekannt: jürgen") makes the notice 8-bit (a utf-8 text
// part, message/global-delivery-status), though the original was 7-bit.
// The notice kept the original's 7bit body type, so it went as raw 8-bit
// data, without BODY=8BITMIME, to an upstream that does not offer
// 8BITMIME (RFC 6152 forbids it). It is 8bit now: declared where the
// upstream offers 8BITMIME, converted to 7 bits where it does not.
func TestRevDSN4EightBitReplyNotice(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 Benutzer unbekannt: j\u00fcrgen"
	for _, tc := range []struct {
		name string
		caps []string
	}{
		{"7bit upstream", []string{"PIPELINING", "ENHANCEDSTATUSCODES"}},
		{"8BITMIME upstream", []string{"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, harness.Script{Capabilities: tc.caps,
				RcptFor: map[string]harness.Response{"bad@example.net": {Reply: refused}}})
			r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
			mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("seven bit"))
			if !waitFor(15*time.Second, func() bool { n := txsFrom(fake, ""); return len(n) == 1 && n[0].Accepted() }) {
				t.Fatalf("the upstream did not take the notice")
			}
			tx := txsFrom(fake, "")[0]
			eight := slices.ContainsFunc(tx.Data, func(b byte) bool { return b >= 0x80 })
			declared := strings.Contains(strings.ToUpper(tx.MailParams), "BODY=8BITMIME")
			if len(tc.caps) == 2 && eight {
				t.Errorf("8-bit notice sent raw to an upstream without 8BITMIME (MAIL parameters %q)", tx.MailParams)
			}
			if len(tc.caps) == 3 && eight && !declared {
				t.Errorf("8-bit notice sent without BODY=8BITMIME (MAIL parameters %q)", tx.MailParams)
			}
		})
	}
}
