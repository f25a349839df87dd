package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev21FilterEmptiesContent: a server filter (--filter) that passes a
// message but leaves its content file empty. Since c88e35f the queue never
// claims an empty content file (it would go out as an empty message), so
// the relay answered 250, then logged "claim failed ... is empty (torn)"
// at every poll, never delivered the message and never told the sender:
// it was set aside only at the next start. Such a filter has failed, as
// one that leaves an envelope that does not parse: the client hears 451
// and keeps the message, and nothing that cannot be forwarded is kept.
func TestRev21FilterEmptiesContent(t *testing.T) {
	t.Parallel()
	empty := script(t, "empty", `: > "$1"; exit 0`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", empty, "--interface", "127.0.0.1", "--spool-dir", spool)
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("emptied"))
	if err == nil || tx.Final.code() != 451 {
		t.Errorf("a filter left the content empty: %v, final reply %q; want 451, the message not accepted", err, tx.Final)
	}
	if ids := messageIDs(t, spool); len(ids) != 0 {
		t.Errorf("the spool keeps %v; want nothing kept that can never be forwarded", ids)
	}
	if !strings.Contains(r.stderr(), "empty") {
		t.Errorf("the log does not say the filter left the content empty:\n%s", tail(r.stderr()))
	}
}

// TestRev21ClientFilterEmptiesContent: a --client-filter that passes the
// claimed message but leaves its content file empty. The queue never sends
// an empty content file (c88e35f: the recipient would get nothing and the
// message be gone as delivered); after a client filter it did.
func TestRev21ClientFilterEmptiesContent(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	empty := script(t, "empty", `: > "$1"; exit 0`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--poll", "1", "--no-bounces",
		"--client-filter", empty, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("emptied"))
	if !waitFor(10*time.Second, func() bool {
		return len(sink.Transactions()) > 0 || strings.Contains(r.stderr(), "left the content file empty")
	}) {
		t.Fatalf("after 10s neither a delivery nor the filter's failure:\n%s", tail(r.stderr()))
	}
	for _, tx := range sink.Transactions() {
		t.Errorf("the smarthost got a message of %d octets after the client filter emptied it; want none sent", len(tx.Data))
	}
	if ids := messageIDs(t, spool); len(ids) != 1 {
		t.Errorf("the spool keeps %v; want the message kept", ids)
	}
}
