package e2e

import (
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestDsn22HostileReplyBytes: an upstream refuses a recipient with a
// reply holding a Latin-1 octet, a NUL, an escape sequence and a bell.
// Postfix's smtp client censors every non-printable octet of a server's
// reply to '?' as it reads it (smtp_chat_resp: printable()), so that its
// notice is valid UTF-8 and free of control characters. The relay copied
// the octets into its notice: a text/plain; charset=utf-8 part and a
// message/global-delivery-status that are not UTF-8, with a NUL in a
// message (RFC 5322 section 2.3 forbids it).
func TestDsn22HostileReplyBytes(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 caf\xe9 \x00\x1b[2J\x07 gone"
	r, fake := opsRefusingRelay(t, refused, "DSN")
	mustSend(t, r.addr(), "alice@example.org", []string{"bad@example.net"}, message("hostile reply"))
	if !waitFor(15*time.Second, func() bool { n := txsFrom(fake, ""); return len(n) == 1 && n[0].Accepted() }) {
		t.Fatalf("the upstream did not take the notice")
	}
	data := string(txsFrom(fake, "")[0].Data)
	if !utf8.ValidString(data) {
		t.Errorf("notice is not valid UTF-8:\n%q", data)
	}
	for i, c := range []byte(data) {
		if c < ' ' && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
			t.Errorf("notice holds control octet %#02x at %d:\n%q", c, i, data)
			break
		}
	}
	n := parseNotice(t, data)
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1", len(n.PerRecipient))
	}
	if got, want := dsnField(n.PerRecipient[0], "Diagnostic-Code"), "smtp; 550 5.1.1 caf? ??[2J? gone"; got != want {
		t.Errorf("Diagnostic-Code %q; want %q (non-printable octets as '?', as Postfix)", got, want)
	}
	if got := dsnField(n.PerRecipient[0], "Status"); got != "5.1.1" {
		t.Errorf("Status %q; want 5.1.1", got)
	}
}

// TestDsn22DSNAcrossRestart: the client's DSN parameters survive the spool
// and a restart, and a message whose recipients end differently is
// reported per recipient, each once. The upstream offers no DSN and defers
// every recipient at first; the relay is stopped and started again; then
// the upstream takes ok@ (NOTIFY=SUCCESS: a "relayed" notice, as Postfix
// sends one), refuses bad@ (NOTIFY=FAILURE: a failure notice returning the
// headers, RET=HDRS) and defers soft@ once more before taking it. Each
// notice carries the ENVID and the recipient's ORCPT, decoded; no
// recipient that was taken is sent the message again.
func TestDsn22DSNAcrossRestart(t *testing.T) {
	t.Parallel()
	const later = "451 4.3.0 try again later"
	fake := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: later}})
	cfg := "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n"
	r := opsRelay(t, fake.Addr(), cfg, "--poll", "1")
	_, final := opsSend(t, r.addr(), "client.e2e.test", "<a@x.example> RET=HDRS ENVID=env+2B22",
		[]string{"<ok@example.net> NOTIFY=SUCCESS ORCPT=rfc822;Ok+2BTag@Example.NET",
			"<bad@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Bad@Example.NET",
			"<soft@example.net>"},
		"From: <a@x.example>\nTo: <ok@example.net>\nSubject: across a restart\n\nBODY-NOT-RETURNED\n")
	id := queuedID(t, final)
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<soft@example.net>" && e.Get("result") == "deferred"
	})
	r.stop(15 * time.Second)

	fake.Update(func(s *harness.Script) {
		s.RcptFor = map[string]harness.Response{
			"ok@example.net":  {Reply: "250 2.1.5 ok"},
			"bad@example.net": {Reply: "550 5.1.1 <bad@example.net>: no such user"},
		}
	})
	r.restart()
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<bad@example.net>" && e.Get("result") == "bounced"
	})
	fake.Update(func(s *harness.Script) { s.Rcpt = harness.Response{} })
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<soft@example.net>" && e.Get("result") == "sent"
	})
	if !waitFor(10*time.Second, func() bool { return len(acceptedTx(fake)) >= 4 }) {
		t.Fatalf("upstream took %d messages; want 4 (ok@, soft@, two notices)", len(acceptedTx(fake)))
	}
	time.Sleep(2 * time.Second) // room for a wrong extra attempt or notice

	got := map[string]int{}
	for _, tx := range txsFrom(fake, "a@x.example") {
		for _, to := range tx.To() {
			got[to]++
		}
		for _, rc := range tx.Rcpts {
			if rc.Params != "" {
				t.Errorf("upstream without DSN got RCPT parameters %q", rc.Params)
			}
		}
	}
	if got["ok@example.net"] != 1 || got["soft@example.net"] != 1 || got["bad@example.net"] != 0 {
		t.Errorf("recipients taken by the upstream: %v; want ok@ and soft@ once each", got)
	}
	var notices []harness.Transaction
	for _, tx := range txsFrom(fake, "") {
		if tx.Accepted() {
			notices = append(notices, tx)
		}
	}
	kinds := map[string]dsnNotice{}
	for _, tx := range notices {
		n := parseNotice(t, string(tx.Data))
		kinds[n.Header.Get("Subject")] = n
	}
	if len(notices) != 2 || len(kinds) != 2 {
		t.Fatalf("%d notices %v; want a relayed and a failure notice", len(notices), slices.Collect(maps.Keys(kinds)))
	}
	for subject, want := range map[string][4]string{
		"Successful Mail Delivery Report":     {"rfc822; ok@example.net", "relayed", "rfc822;Ok+Tag@Example.NET", "text/rfc822-headers"},
		"Undelivered Mail Returned to Sender": {"rfc822; bad@example.net", "failed", "rfc822;Bad@Example.NET", "text/rfc822-headers"},
	} {
		n, ok := kinds[subject]
		if !ok {
			t.Errorf("no notice %q", subject)
			continue
		}
		if got := dsnField(n.PerMessage, "Original-Envelope-Id"); got != "env+22" {
			t.Errorf("%s: Original-Envelope-Id %q; want env+22", subject, got)
		}
		if len(n.PerRecipient) != 1 {
			t.Errorf("%s: %d recipient groups; want 1\n%s", subject, len(n.PerRecipient), n.Bodies[1])
			continue
		}
		g := n.PerRecipient[0]
		if dsnField(g, "Final-Recipient") != want[0] || dsnField(g, "Action") != want[1] ||
			!strings.EqualFold(dsnField(g, "Original-Recipient"), want[2]) || !strings.HasSuffix(dsnField(g, "Original-Recipient"), want[2][6:]) {
			t.Errorf("%s: delivery status\n%s\nwant Final-Recipient %q, Action %q, Original-Recipient %q", subject, n.Bodies[1], want[0], want[1], want[2])
		}
		if len(n.Types) != 3 || n.Types[2] != want[3] || strings.Contains(n.Bodies[2], "BODY-NOT-RETURNED") {
			t.Errorf("%s: parts %q; want the original's headers only (%s)", subject, n.Types, want[3])
		}
	}
}
