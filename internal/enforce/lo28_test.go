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
