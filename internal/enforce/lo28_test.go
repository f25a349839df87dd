package enforce

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// TestLo28BannedClientByName: a client banned (its address, or its /64)
// before the welcomelist named it by host name is not banned while its
// verified name matches, as one listed by address is not; the same
// address under another name, or none, still is. NamesSpare says whether
// the list can spare anyone by name at all.
func TestLo28BannedClientByName(t *testing.T) {
	b := openTestBans(t, filepath.Join(t.TempDir(), "bans"), newFakeClock())
	b.Delay = 0
	v4, v6 := netip.MustParseAddr("198.51.100.28"), netip.MustParseAddr("2001:db8:28::7")
	for _, ip := range []netip.Addr{v4, v6} {
		if _, err := b.Add(ip, time.Hour, "r: 550 spam"); err != nil {
			t.Fatal(err)
		}
	}
	b.Spare = &Spared{Welcome: v6ban23Welcome(t, "192.0.2.1\n")}
	if b.NamesSpare() {
		t.Error("NamesSpare() with no host-name pattern = true; want false")
	}
	b.Spare = &Spared{Welcome: v6ban23Welcome(t, `^mx\.partner28\.test$`+"\n")}
	if !b.NamesSpare() {
		t.Error("NamesSpare() with a host-name pattern = false; want true")
	}
	for _, c := range []struct {
		ip, name string
		want     bool
	}{
		{"198.51.100.28", "mx.partner28.test", false},
		{"198.51.100.28", "MX.Partner28.test.", false},
		{"198.51.100.28", "", true},
		{"198.51.100.28", "mx.partner28.test.evil", true},
		{"2001:db8:28::7", "mx.partner28.test", false},
		{"2001:db8:28::99", "mx.partner28.test", false}, // in the banned /64
		{"2001:db8:28::99", "other.test", true},
	} {
		ip := netip.MustParseAddr(c.ip)
		if _, got := b.BannedClient(ip, c.name); got != c.want {
			t.Errorf("BannedClient(%s, %q) = %v; want %v", c.ip, c.name, got, c.want)
		}
		if _, got := b.DueClient(ip, c.name); got != c.want {
			t.Errorf("DueClient(%s, %q) = %v; want %v", c.ip, c.name, got, c.want)
		}
	}
	if _, banned := b.Banned(v4); !banned {
		t.Error("Banned(address alone) = false; want the ban (no name known)")
	}
}

// TestLo28EncapLimitMoreThanLimit: a refusal needing more copies than
// the hour's limit (a proxied message with more recipients) never fitted
// in the client's bucket and was never encapsulated. It goes when the
// bucket is full, and the copies past the limit are owed: the client's
// next copy waits until they are paid back. A bucket not full refuses it.
func TestLo28EncapLimitMoreThanLimit(t *testing.T) {
	var l encapLimiter
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("203.0.113.28"), netip.MustParseAddr("203.0.113.29")
	for i, c := range []struct {
		ip    netip.Addr
		limit int
		n     int
		after time.Duration
		want  bool
	}{
		{a, 2, 3, 0, true},                 // quiet till now: all three go, one owed
		{a, 2, 1, 0, false},                // in debt
		{a, 2, 1, 59 * time.Minute, false}, // 2 an hour: the debt is paid at 30 min, the next copy at 60
		{a, 2, 1, 61 * time.Minute, true},
		{b, 2, 1, 0, true},  // another client's own bucket
		{b, 2, 3, 0, false}, // its bucket is not full: the three wait
		{b, 2, 3, 30 * time.Minute, true},
	} {
		if got := l.allow(c.limit, c.ip, c.n, t0.Add(c.after)); got != c.want {
			t.Errorf("%d: allow(limit %d, %s, %d copies, +%v) = %v; want %v", i, c.limit, c.ip, c.n, c.after, got, c.want)
		}
	}
}
