package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGd27TwoRelaysSharePendingHolds: two relays, each with its own
// spool, share one ban file, and so the hold-pending file beside it.
// Each bans a spammer while one of the spammer's messages is in delivery
// (Gmail is slow at its RCPT), so each has a message to hold when it
// comes back. Each relay is then killed (-9) while its message is still
// in delivery and started again: each must hold its own message, not
// deliver it. Each rewrote the shared file with its own messages alone,
// so the relay that wrote first forgot its message at the restart and
// delivered it; and the relay started first forgot the other's.
func TestGd27TwoRelaysSharePendingHolds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	slowed := map[string]bool{}
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			switch {
			case stage == harness.StageRcpt && strings.HasPrefix(arg, "later"):
				mu.Lock()
				defer mu.Unlock()
				if !slowed[arg] {
					slowed[arg] = true
					return harness.Response{Delay: 40 * time.Second}
				}
			case stage == harness.StageEndOfData && slices.Contains(tx.To(), "spam@gmail.test"):
				return harness.Response{Reply: strings.ReplaceAll(gmailUnsolicited, "{id}", "gd27")}
			}
			return harness.Response{}
		}})
	dir := t.TempDir()
	cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + filepath.Join(dir, "bans") + "\"\n" +
		"[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n"
	pending := filepath.Join(dir, "hold-pending")
	type side struct {
		r       *relay
		spammer string
		later   string
		id      string
	}
	sides := []*side{
		{r: startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg}), spammer: "127.0.27.11", later: "latera@gmail.test"},
		{r: startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg}), spammer: "127.0.27.12", later: "laterb@gmail.test"},
	}
	for _, s := range sides {
		tx, err := sendFrom(s.r.addr(), s.spammer, "eve@spam.example", []string{s.later}, gmailMessage("eve@spam.example", "first"))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
		s.id = queuedID(t, tx.Final)
		if !waitFor(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return slowed[s.later] }) {
			t.Fatalf("%s did not reach Gmail's RCPT", s.id)
		}
		if tx, err = sendFrom(s.r.addr(), s.spammer, "eve@spam.example", []string{"spam@gmail.test"}, gmailMessage("eve@spam.example", "spam")); err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
		s.r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == s.spammer })
		if !waitFor(10*time.Second, func() bool { b, _ := os.ReadFile(pending); return strings.Contains(string(b), s.id) }) {
			b, _ := os.ReadFile(pending)
			t.Fatalf("hold-pending:\n%s\nwant %s in it", b, s.id)
		}
	}
	if b, _ := os.ReadFile(pending); !strings.Contains(string(b), sides[0].id) {
		t.Errorf("after the second relay's ban, hold-pending:\n%s\nwant the first relay's %s kept", b, sides[0].id)
	}
	for _, s := range sides {
		s.r.kill()
		s.r.restart()
		if !waitFor(15*time.Second, func() bool { return msgState(s.r.spool, s.id) == "held" }) {
			t.Errorf("after a kill -9 and a restart, %s (in delivery when its client was banned) is %s; want held",
				s.id, msgState(s.r.spool, s.id))
		}
	}
	for _, s := range sides {
		if n := len(rep19Txs(gmail, func(tx harness.Transaction) bool {
			return tx.Accepted() && slices.Contains(tx.To(), s.later)
		})); n != 0 {
			t.Errorf("Gmail accepted the banned client's %s %d times; want 0", s.id, n)
		}
	}
}
