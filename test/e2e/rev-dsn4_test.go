package e2e

// Outside review (rev-dsn4) of what becomes of a message after it is
// accepted: notices, lifetimes, and the queue commands on a live spool.

import (
	"slices"
	"strings"
	"testing"
	"time"

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
