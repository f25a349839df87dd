package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOpsBounceThroughPostfix: relaykeeper forwards to a real Postfix that
// refuses one recipient (550 5.1.1) and relays the rest to smtp-sink. The
// failed recipient gets its sender an RFC 3464 notice from <>, queued like
// any message: Postfix accepts it (status=sent) and the sink receives it.
// Taken apart with go-message, it is a multipart/report of three parts
// whose delivery-status names the recipient, the action, the status and
// Postfix's own reply, and whose third part is the original message.
func TestOpsBounceThroughPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(sink.Addr()),
		MainCF: []string{"smtpd_recipient_restrictions = check_recipient_access " +
			"inline:{ { bad@example.net = 550 5.1.1 no such user } }, permit_mynetworks, reject"},
	})
	r := opsRelay(t, pf.Addr(), "", "--forward-on-disconnect")

	body := "From: Alice <alice@example.org>\nTo: good@example.net, bad@example.net\n" +
		"Subject: bounce through postfix\nMessage-ID: <bounce-pf@e2e.test>\n\nHello both.\n"
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"good@example.net", "bad@example.net"}, body)
	id := queuedID(t, tx.Final)

	bounced := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<bad@example.net>"
	})
	const pfReply = "550 5.1.1 <bad@example.net>: Recipient address rejected: no such user"
	if bounced.Get("result") != "bounced" || bounced.Get("reply") != pfReply {
		t.Fatalf("delivery line for bad@: result=%s reply=%q; want bounced, %q", bounced.Get("result"), bounced.Get("reply"), pfReply)
	}
	notice := r.waitEvent("notice", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == id })
	nid := notice.Get("id")
	if notice.Get("kind") != "failure" || notice.Get("to") != "<alice@example.org>" || notice.Get("nrcpt") != "1" {
		t.Errorf("notice line %v; want kind=failure to=<alice@example.org> nrcpt=1", notice.Fields)
	}
	// Postfix took the notice from relaykeeper and relayed it to the sink.
	sent := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == nid })
	if sent.Get("result") != "sent" || sent.Get("to") != "<alice@example.org>" || !strings.HasPrefix(sent.Get("reply"), "250 2.0.0 Ok: queued as ") {
		t.Errorf("notice %s delivery: %v; want sent to <alice@example.org> with Postfix's 250", nid, sent.Fields)
	}
	pf.WaitLog(t, "to=<alice@example.org>, relay=127.0.0.1[127.0.0.1]:"+strings.TrimPrefix(sink.Addr(), "127.0.0.1:"), 30*time.Second)
	if line := pf.WaitLog(t, "to=<alice@example.org>", 5*time.Second); !strings.Contains(line, "status=sent") {
		t.Errorf("Postfix log for the notice: %q; want status=sent", line)
	}
	sink.WaitCount(t, 2, 20*time.Second)
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("sink got %d messages; want 2 (the original for good@, the notice)", len(msgs))
	}
	var orig, nm harness.SinkMessage
	for _, m := range msgs {
		if m.From == "" {
			nm = m
		} else {
			orig = m
		}
	}
	if orig.From != "alice@example.org" || !slices.Equal(orig.To, []string{"good@example.net"}) {
		t.Errorf("original at the sink: from %q to %q; want alice@example.org to [good@example.net]", orig.From, orig.To)
	}
	if nm.MailArgs == "" || !strings.HasPrefix(nm.MailArgs, "<>") || !slices.Equal(nm.To, []string{"alice@example.org"}) {
		t.Fatalf("notice at the sink: MAIL %q RCPT %q; want MAIL FROM:<> to [alice@example.org]", nm.MailArgs, nm.To)
	}

	n := parseNotice(t, nm.Data)
	for name, want := range map[string]string{
		"From":           "MAILER-DAEMON@relay.test (Mail Delivery System)",
		"To":             "alice@example.org",
		"Subject":        "Undelivered Mail Returned to Sender",
		"Auto-Submitted": "auto-replied",
		"MIME-Version":   "1.0",
	} {
		if got := n.Header.Get(name); got != want {
			t.Errorf("notice %s: %q; want %q", name, got, want)
		}
	}
	if !slices.Equal(n.Types, []string{"text/plain", "message/delivery-status", "message/rfc822"}) {
		t.Errorf("notice parts %q; want text/plain, message/delivery-status, message/rfc822", n.Types)
	}
	if got := dsnField(n.PerMessage, "Reporting-MTA"); got != "dns; relay.test" {
		t.Errorf("Reporting-MTA %q; want \"dns; relay.test\"", got)
	}
	if got := dsnField(n.PerMessage, "X-Relaykeeper-Queue-ID"); got != id {
		t.Errorf("X-Relaykeeper-Queue-ID %q; want %s", got, id)
	}
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d per-recipient groups; want 1 (bad@ only; good@ was delivered)\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	rg := n.PerRecipient[0]
	for name, want := range map[string]string{
		"Final-Recipient": "rfc822; bad@example.net",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; 127.0.0.1",
		"Diagnostic-Code": "smtp; " + pfReply,
	} {
		if got := dsnField(rg, name); got != want {
			t.Errorf("delivery-status %s: %q; want %q", name, got, want)
		}
	}
	if rg.Has("Original-Recipient") {
		t.Errorf("Original-Recipient %q present; the client sent no ORCPT", rg.Get("Original-Recipient"))
	}
	text := strings.Join(strings.Fields(n.Bodies[0]), " ")
	if !strings.Contains(text, "<bad@example.net>: host 127.0.0.1 said: "+pfReply) || strings.Contains(text, "good@example.net") {
		t.Errorf("notice text does not explain bad@ (only):\n%s", n.Bodies[0])
	}
	if len(n.Bodies) == 3 {
		ret := n.Bodies[2]
		if receivedID(strings.ReplaceAll(ret, "\r\n", "\n")) != id || subjectOf(ret) != "bounce through postfix" ||
			!strings.Contains(ret, "\nHello both.") {
			t.Errorf("returned original is not message %s as sent:\n%s", id, ret)
		}
	}
	// Both are gone from the spool: the original delivered or failed and
	// reported, the notice delivered.
	waitOpsSpool(t, r.spool, 10*time.Second, "only "+id+" failed", func(f map[string][]string) bool {
		return len(f) == 1 && slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
}

// TestOpsDSNParameters: the client's DSN parameters (RFC 3461) are honoured
// and passed on. NOTIFY=NEVER: a failed recipient brings no notice.
// NOTIFY=FAILURE,DELAY with ORCPT, RET=HDRS and ENVID: the notice carries
// Original-Recipient and Original-Envelope-Id and returns only the headers.
// The upstream offers DSN, so it is given RET, ENVID, NOTIFY and ORCPT as
// the client sent them.
func TestOpsDSNParameters(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bad@example.net>: no such user"
	r, fake := opsRefusingRelay(t, refused, "DSN")

	// A: NOTIFY=NEVER.
	_, final := opsSend(t, r.addr(), "client.e2e.test", "<a@x.example> RET=HDRS ENVID=abc",
		[]string{"<bad@example.net> NOTIFY=NEVER"}, message("dsn never"))
	idA := queuedID(t, final)
	waitOpsSpool(t, r.spool, 10*time.Second, idA+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[idA], []string{"content", "envelope.bad"})
	})
	// The notice, if any, is queued before the message is marked failed.
	if ns := opsNotices(r, idA); len(ns) != 0 {
		t.Errorf("NOTIFY=NEVER: notices %v; want none", ns[0].Fields)
	}

	// B: NOTIFY=FAILURE,DELAY with ORCPT, and a recipient that is
	// delivered, with NOTIFY=SUCCESS and an ORCPT to pass on.
	_, final = opsSend(t, r.addr(), "client.e2e.test", "<a@x.example> RET=HDRS ENVID=def+2Bq",
		[]string{"<bad@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bad@example.net",
			"<ok@example.net> NOTIFY=SUCCESS ORCPT=rfc822;Ok@Example.NET"},
		"From: <a@x.example>\nTo: <bad@example.net>\nSubject: dsn failure\n\nBODY-LINE-NOT-RETURNED\n")
	idB := queuedID(t, final)
	notice := r.waitEvent("notice", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == idB })
	nid := notice.Get("id")
	var ntx harness.Transaction
	waitFor(10*time.Second, func() bool {
		txs := txsFrom(fake, "")
		if len(txs) > 0 {
			ntx = txs[0]
		}
		return len(txs) > 0 && ntx.Accepted()
	})
	if !ntx.Accepted() || !slices.Equal(ntx.To(), []string{"a@x.example"}) {
		t.Fatalf("upstream got no notice to a@x.example: %+v", txsFrom(fake, ""))
	}
	n := parseNotice(t, string(ntx.Data))
	if got := dsnField(n.PerMessage, "Original-Envelope-Id"); got != "def+q" {
		t.Errorf("Original-Envelope-Id %q; want \"def+q\" (ENVID=def+2Bq decoded)", got)
	}
	if got := dsnField(n.PerMessage, "X-Relaykeeper-Queue-ID"); got != idB {
		t.Errorf("notice is about %q; want %s", got, idB)
	}
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1:\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	// The address type is case-insensitive (RFC 3461 section 4.2); the
	// relay hands it on upper-cased.
	if got := dsnField(n.PerRecipient[0], "Original-Recipient"); !strings.EqualFold(got, "rfc822;bad@example.net") ||
		!strings.HasSuffix(got, ";bad@example.net") {
		t.Errorf("delivery-status Original-Recipient: %q; want rfc822;bad@example.net", got)
	}
	for name, want := range map[string]string{
		"Final-Recipient": "rfc822; bad@example.net",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Diagnostic-Code": "smtp; " + refused,
	} {
		if got := dsnField(n.PerRecipient[0], name); got != want {
			t.Errorf("delivery-status %s: %q; want %q", name, got, want)
		}
	}
	if !slices.Equal(n.Types, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}) {
		t.Errorf("RET=HDRS notice parts %q; want text/plain, message/delivery-status, text/rfc822-headers", n.Types)
	} else if ret := n.Bodies[2]; subjectOf(ret) != "dsn failure" || strings.Contains(ret, "BODY-LINE-NOT-RETURNED") {
		t.Errorf("RET=HDRS: returned part is not the headers only:\n%s", ret)
	}

	// What the upstream was given.
	origTxs := txsFrom(fake, "a@x.example")
	if len(origTxs) != 2 {
		t.Fatalf("upstream saw %d transactions from a@x.example; want 2", len(origTxs))
	}
	type rc struct{ addr, params string }
	want := []struct {
		mail  string
		rcpts []rc
	}{
		{"RET=HDRS ENVID=abc", []rc{{"bad@example.net", "NOTIFY=NEVER"}}},
		{"RET=HDRS ENVID=def+2Bq", []rc{{"bad@example.net", "NOTIFY=FAILURE,DELAY ORCPT=rfc822;bad@example.net"},
			{"ok@example.net", "NOTIFY=SUCCESS ORCPT=rfc822;Ok@Example.NET"}}},
	}
	for i, tx := range origTxs {
		mail := removeParam(tx.MailParams, "SIZE=")
		if mail != want[i].mail {
			t.Errorf("upstream transaction %d MAIL params %q; want %q (besides SIZE)", i+1, tx.MailParams, want[i].mail)
		}
		var got []rc
		for _, r := range tx.Rcpts {
			// ORCPT's address type is case-insensitive; its address
			// is not to be touched.
			got = append(got, rc{r.Addr, strings.Replace(r.Params, "ORCPT=RFC822;", "ORCPT=rfc822;", 1)})
		}
		if !slices.Equal(got, want[i].rcpts) {
			t.Errorf("upstream transaction %d RCPTs %q; want %q", i+1, got, want[i].rcpts)
		}
	}
	// Exactly one notice, and the notice itself is done.
	if ns := opsNotices(r, ""); len(ns) != 1 {
		t.Errorf("%d notices; want 1 (for %s)", len(ns), idB)
	}
	r.waitEvent("delivery", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == nid && e.Get("result") == "sent" })
	if n := len(txsFrom(fake, "")); n != 1 {
		t.Errorf("upstream got %d notices; want 1", n)
	}
}

// removeParam drops the ESMTP parameter starting with prefix.
func removeParam(params, prefix string) string {
	var out []string
	for _, p := range strings.Fields(params) {
		if !strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// TestOpsQueueLifetimeAndDelayWarning: with delay_warning 1s and
// max_queue_lifetime 3s, a recipient the upstream keeps deferring (451)
// brings its sender one "Delayed Mail" notice, then fails as expired:
// the message ends as .envelope.bad with the expiry as its reason, and a
// failure notice follows. The notices are undeliverable too (the delay
// notice deferred until bounce_queue_lifetime, the failure notice refused
// for good): each goes to the postmaster as a double bounce (Postfix's
// 2bounce_notice_recipient), from double-bounce@, and none goes to the
// sender again.
func TestOpsQueueLifetimeAndDelayWarning(t *testing.T) {
	t.Parallel()
	const busy = "451 4.2.0 <slow@example.net>: mailbox busy"
	fake := harness.NewFakeSMTP(t, harness.Script{
		RcptFor: map[string]harness.Response{"slow@example.net": {Reply: busy}},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageEndOfData || tx.MailFrom != "" {
				return harness.Response{}
			}
			if strings.Contains(string(tx.Data), "\r\nSubject: Delayed Mail") {
				return harness.Response{Reply: "451 4.3.0 notices later"}
			}
			return harness.Response{Reply: "550 5.7.1 no notices here"}
		},
	})
	cfg := `[delivery]
minimal_backoff_time = "1s"
maximal_backoff_time = "1s"
max_queue_lifetime = "3s"
bounce_queue_lifetime = "3s"
delay_warning = "1s"
`
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1")
	start := time.Now()
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"ok@example.net", "slow@example.net"},
		message("lifetime")).Final)

	waitOpsSpool(t, r.spool, 15*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
	if el := time.Since(start); el < 3*time.Second {
		t.Errorf("message failed %v after arrival; want no sooner than max_queue_lifetime, 3s", el)
	}
	env := readEnvelope(t, filepath.Join(r.spool, id+".envelope.bad"))
	st := env.rcptStatus()
	if !strings.HasPrefix(st["ok@example.net"], "sent ok@example.net 250 ") {
		t.Errorf("ok@: %q; want sent", st["ok@example.net"])
	}
	expired := "message delivery expired after "
	if s := st["slow@example.net"]; !strings.HasPrefix(s, "failed slow@example.net "+expired) || !strings.HasSuffix(s, " in the queue; last reply: "+busy) {
		t.Errorf("slow@: %q; want failed, %q...%q", s, expired, "in the queue; last reply: "+busy)
	}
	reasons := env.all("X-MailRelay-Reason")
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "slow@example.net: "+expired) {
		t.Errorf("X-MailRelay-Reason lines %q; want one for slow@ saying %q", reasons, expired)
	}
	bl := deliveries(r.events("delivery"), "slow@example.net", "bounced")
	if len(bl) != 1 || !strings.HasPrefix(bl[0].Get("reply"), expired) {
		t.Errorf("bounced lines for slow@: %d; want 1 with reply %q...", len(bl), expired)
	}

	// The notices: one delay warning before, one failure after.
	var delay, failure []*maillog.Entry
	for _, e := range opsNotices(r, "") {
		switch e.Get("kind") {
		case "delay":
			delay = append(delay, e)
		case "failure":
			failure = append(failure, e)
		}
	}
	if len(delay) != 1 || len(failure) != 1 || delay[0].Get("orig") != id || failure[0].Get("orig") != id {
		t.Fatalf("notices: %d delay, %d failure; want one of each about %s", len(delay), len(failure), id)
	}
	if delay[0].Get("nrcpt") != "1" || failure[0].Get("nrcpt") != "1" {
		t.Errorf("notices name %s and %s recipients; want 1 each (slow@)", delay[0].Get("nrcpt"), failure[0].Get("nrcpt"))
	}
	did, fid := delay[0].Get("id"), failure[0].Get("id")

	// Both notices reached the upstream; parse what it saw.
	var dtx, ftx *harness.Transaction
	waitFor(10*time.Second, func() bool {
		dtx, ftx = nil, nil
		for _, tx := range txsFrom(fake, "") {
			if tx.Reply == "" {
				continue
			}
			tx := tx
			if strings.HasPrefix(tx.Reply, "451") && dtx == nil {
				dtx = &tx
			} else if strings.HasPrefix(tx.Reply, "550") {
				ftx = &tx
			}
		}
		return dtx != nil && ftx != nil
	})
	if dtx == nil || ftx == nil {
		t.Fatalf("upstream did not see both notices (delay %v, failure %v)", dtx != nil, ftx != nil)
	}
	dn := parseNotice(t, string(dtx.Data))
	if got := dn.Header.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("delay notice Subject %q", got)
	}
	if len(dn.PerRecipient) != 1 || dsnField(dn.PerRecipient[0], "Action") != "delayed" ||
		dsnField(dn.PerRecipient[0], "Status") != "4.2.0" || dsnField(dn.PerRecipient[0], "Final-Recipient") != "rfc822; slow@example.net" ||
		dsnField(dn.PerRecipient[0], "Diagnostic-Code") != "smtp; "+busy || !dn.PerRecipient[0].Has("Will-Retry-Until") {
		t.Errorf("delay notice's delivery status:\n%s", dn.Bodies[1])
	}
	fn := parseNotice(t, string(ftx.Data))
	if got := fn.Header.Get("Subject"); got != "Undelivered Mail Returned to Sender" {
		t.Errorf("failure notice Subject %q", got)
	}
	if len(fn.PerRecipient) != 1 || dsnField(fn.PerRecipient[0], "Action") != "failed" ||
		dsnField(fn.PerRecipient[0], "Final-Recipient") != "rfc822; slow@example.net" ||
		dsnField(fn.PerRecipient[0], "Status") != "4.2.0" ||
		dsnField(fn.PerRecipient[0], "Diagnostic-Code") != "smtp; "+busy {
		// Expired, not refused: the last deferral's status, class 4,
		// as Postfix writes it, so that it counts as no hard bounce.
		t.Errorf("failure notice's delivery status (want failed, 4.2.0, smtp; %s):\n%s", busy, fn.Bodies[1])
	}
	if !strings.Contains(strings.Join(strings.Fields(string(fn.Bodies[0])), " "), "<slow@example.net>: "+expired) {
		t.Errorf("failure notice's text does not say that the message expired:\n%s", fn.Bodies[0])
	}

	// Both notices fail in turn (the delay notice expires after
	// bounce_queue_lifetime); each undeliverable notice goes to the
	// postmaster as a double bounce, which the upstream takes.
	for _, nid := range []string{did, fid} {
		e := r.waitEvent("notice", 12*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == nid })
		if e.Get("kind") != "2bounce" || e.Get("to") != "<postmaster@relay.test>" {
			t.Errorf("notice line about notice %s: %v; want kind=2bounce to=<postmaster@relay.test>", nid, e.Fields)
		}
	}
	waitFor(10*time.Second, func() bool {
		n := 0
		for _, tx := range fake.Transactions() {
			if tx.MailFrom == "double-bounce@relay.test" && tx.Accepted() && slices.Equal(tx.To(), []string{"postmaster@relay.test"}) {
				n++
			}
		}
		return n == 2
	})
	time.Sleep(1500 * time.Millisecond) // two more poll rounds
	if ns := opsNotices(r, ""); len(ns) != 4 {
		var got []string
		for _, e := range ns {
			got = append(got, fmt.Sprintf("%s about %s", e.Get("kind"), e.Get("orig")))
		}
		t.Errorf("notices %q; want four: delay and failure about %s, a double bounce about each", got, id)
	}
	for _, tx := range fake.Transactions() {
		if tx.MailFrom == "" && !slices.Equal(tx.To(), []string{"alice@example.org"}) {
			t.Errorf("a notice went to %q; want only alice@example.org", tx.To())
		}
	}
	if f := opsSpool(t, r.spool); len(f) != 1 || !slices.Equal(f[id], []string{"content", "envelope.bad"}) {
		t.Errorf("spool holds %v; want only %s, failed (the notices double-bounced)", f, id)
	}
	dl := deliveries(r.events("delivery"), "alice@example.org", "bounced")
	if len(dl) != 2 {
		t.Errorf("%d bounced deliveries to alice@ (the notices); want 2", len(dl))
	}
}

// TestOpsNoBounces: with --no-bounces a failed message is only marked
// failed (.envelope.bad), as E-MailRelay does: no notice is queued or sent.
func TestOpsNoBounces(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bad@example.net>: no such user"
	fake := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: refused}})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect", "--no-bounces")
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("no bounces")).Final)
	waitOpsSpool(t, r.spool, 10*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
	if f := opsSpool(t, r.spool); len(f) != 1 {
		t.Errorf("spool holds %v; want only %s, failed", f, id)
	}
	env := readEnvelope(t, filepath.Join(r.spool, id+".envelope.bad"))
	if got := env.all("X-MailRelay-Reason"); !slices.Equal(got, []string{"bad@example.net: " + refused}) {
		t.Errorf("reasons %q; want the upstream's refusal", got)
	}
	time.Sleep(1200 * time.Millisecond)
	if ns := opsNotices(r, ""); len(ns) != 0 {
		t.Errorf("--no-bounces: %d notices queued; want none", len(ns))
	}
	if txs := txsFrom(fake, ""); len(txs) != 0 {
		t.Errorf("--no-bounces: upstream got %d messages from <>; want none", len(txs))
	}
	if n := len(fake.Transactions()); n != 1 {
		t.Errorf("upstream saw %d transactions; want 1", n)
	}
	if _, err := os.Stat(filepath.Join(r.spool, id+".content")); err != nil {
		t.Errorf("failed message's content: %v", err)
	}
}

// TestOpsDSNRelayedNotice: when the upstream does not offer DSN, the DSN
// request cannot go on, so it is neither sent (no NOTIFY, ORCPT, RET or
// ENVID to a server that does not know them) nor lost: a recipient that
// asked for NOTIFY=SUCCESS gets its sender a "relayed" notice once the
// upstream has taken the message (RFC 3461 section 5.2.2; Postfix does
// the same; internal/bounce builds it as bounce.Success). A recipient
// that did not ask gets none.
func TestOpsDSNRelayedNotice(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{}) // PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE; no DSN
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	_, final := opsSend(t, r.addr(), "client.e2e.test", "<a@x.example> RET=HDRS ENVID=r1",
		[]string{"<ok@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ok@example.net", "<quiet@example.net>"},
		message("dsn relayed"))
	id := queuedID(t, final)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<ok@example.net>" && e.Get("result") == "sent"
	})
	txs := txsFrom(fake, "a@x.example")
	if len(txs) != 1 || removeParam(txs[0].MailParams, "SIZE=") != "" || len(txs[0].Rcpts) != 2 ||
		txs[0].Rcpts[0].Params != "" || txs[0].Rcpts[1].Params != "" {
		t.Errorf("upstream without DSN was given DSN parameters: %+v", txs)
	}
	waitFor(5*time.Second, func() bool { return len(opsNotices(r, id)) > 0 && len(acceptedTx(fake)) >= 2 })
	ns := opsNotices(r, id)
	if len(ns) != 1 || ns[0].Get("kind") != "success" || ns[0].Get("nrcpt") != "1" || ns[0].Get("to") != "<a@x.example>" {
		var got []string
		for _, e := range ns {
			got = append(got, e.Get("kind")+" "+e.Get("nrcpt"))
		}
		t.Fatalf("notices about %s: %q; want one \"success\" notice for ok@ (NOTIFY=SUCCESS relayed to an upstream without DSN)", id, got)
	}
	nt := txsFrom(fake, "")
	if len(nt) != 1 || !nt[0].Accepted() {
		t.Fatalf("upstream got %d notices; want 1", len(nt))
	}
	n := parseNotice(t, string(nt[0].Data))
	if len(n.PerRecipient) != 1 || dsnField(n.PerRecipient[0], "Final-Recipient") != "rfc822; ok@example.net" ||
		dsnField(n.PerRecipient[0], "Action") != "relayed" || dsnField(n.PerRecipient[0], "Status") != "2.0.0" ||
		!strings.EqualFold(dsnField(n.PerRecipient[0], "Original-Recipient"), "rfc822;ok@example.net") ||
		dsnField(n.PerMessage, "Original-Envelope-Id") != "r1" {
		t.Errorf("relayed notice's delivery status:\n%s", n.Bodies[1])
	}
}
