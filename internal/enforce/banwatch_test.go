package enforce

import (
	"bytes"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestReloadBansUnbanLines: a ban that ends gets an unban line, "expired"
// when its time came and "lifted" when it was removed first; a ban removed
// before it took effect (no ban line was written) gets none.
func TestReloadBansUnbanLines(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	b, err := OpenBans(filepath.Join(t.TempDir(), "bans"), clock)
	if err != nil {
		t.Fatal(err)
	}
	b.Delay = 0
	var ml bytes.Buffer
	e := &Enforcer{Bans: b, MailLog: maillog.New(&ml), Now: clock}
	log := slog.New(slog.DiscardHandler)
	a, c, p := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	b.Add(a, time.Hour, "x")
	b.Add(c, 2*time.Hour, "y")
	e.ReloadBans(log)
	if ml.Len() != 0 {
		t.Fatalf("unban lines before any ban ended:\n%s", ml.String())
	}
	now = now.Add(time.Hour + time.Second)
	e.ReloadBans(log)
	if got := ml.String(); !strings.Contains(got, " unban client=192.0.2.1 prefix=192.0.2.1/32 until=2026-12-06T11:00:00Z reason=expired\n") || strings.Count(got, "unban") != 1 {
		t.Fatalf("after the first ban's end, mail log:\n%s", got)
	}
	ml.Reset()
	b.Delay = time.Hour
	b.Add(p, time.Hour, "pending") // takes effect in an hour
	e.ReloadBans(log)
	b.Remove(c)
	b.Remove(p)
	e.ReloadBans(log)
	if got := ml.String(); !strings.Contains(got, " unban client=192.0.2.2 prefix=192.0.2.2/32 until=2026-12-06T12:00:00Z reason=lifted\n") || strings.Count(got, "unban") != 1 {
		t.Fatalf("after bans remove, mail log:\n%s", got)
	}
	ml.Reset()
	e.ReloadBans(log)
	if ml.Len() != 0 {
		t.Fatalf("an unban written twice:\n%s", ml.String())
	}

	// A ban whose line was written and which was lifted before the next
	// call: the ban writer told of it.
	b.Delay = 0
	d := netip.MustParseAddr("192.0.2.4")
	ban, _ := b.Add(d, time.Hour, "short-lived")
	e.NoteBan(BanEvent{Client: d, Until: ban.Until})
	b.Remove(d)
	e.ReloadBans(log)
	if got := ml.String(); !strings.Contains(got, " unban client=192.0.2.4 ") || !strings.Contains(got, "reason=lifted") {
		t.Fatalf("a ban lifted between two reloads, mail log:\n%s", got)
	}
}
