package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trustedSet is a TrustedNets with TrustedWithin, as *policy.Engine.
type trustedSet []netip.Prefix

func (s trustedSet) Trusted(ip netip.Addr) bool {
	for _, p := range s {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s trustedSet) TrustedWithin(p netip.Prefix) bool {
	for _, q := range s {
		if q.Overlaps(p) {
			return true
		}
	}
	return false
}

func v6ban23Welcome(t *testing.T, text string) *Welcomelist {
	t.Helper()
	path := filepath.Join(t.TempDir(), "welcomelist")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestV6ban23BanNet: what a ban of a client covers. An IPv6 client's /64 by
// default (before: its address alone, and a spammer with a /64 rotated
// addresses); an IPv4 client's address; IPv4-mapped addresses are IPv4;
// loopback, link-local, NAT64 and Teredo addresses alone; and the client
// alone when its network holds a welcomelisted or trusted address.
func TestV6ban23BanNet(t *testing.T) {
	spare := &Spared{
		Welcome: v6ban23Welcome(t, "2001:db8:5:5::99\n198.51.100.10-198.51.100.20\n^mx\\.partner\\.example$\n"),
		Trusted: trustedSet{netip.MustParsePrefix("2001:db8:6:6:8000::/65")},
		Nets:    []netip.Prefix{netip.MustParsePrefix("2001:db8:7:7::1/128")},
	}
	tests := []struct {
		ip    string
		width BanWidth
		want  string
	}{
		{"2001:db8:1:2::7", BanWidth{}, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", BanWidth{}, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::7", BanWidth{IPv6: 128}, "2001:db8:1:2::7/128"},
		{"2001:db8:1:2::7", BanWidth{IPv6: 48}, "2001:db8:1::/48"},
		{"203.0.113.9", BanWidth{}, "203.0.113.9/32"},
		{"203.0.113.9", BanWidth{IPv4: 24}, "203.0.113.0/24"},
		{"::ffff:203.0.113.9", BanWidth{}, "203.0.113.9/32"},
		{"::ffff:203.0.113.9", BanWidth{IPv4: 24, IPv6: 64}, "203.0.113.0/24"},
		{"::1", BanWidth{}, "::1/128"},
		{"fe80::1%eth0", BanWidth{}, "fe80::1/128"},
		{"127.0.0.9", BanWidth{IPv4: 24}, "127.0.0.9/32"},
		{"169.254.3.4", BanWidth{IPv4: 24}, "169.254.3.4/32"},
		{"64:ff9b::203.0.113.9", BanWidth{}, "64:ff9b::cb00:7109/128"},
		{"64:ff9b:1::5", BanWidth{}, "64:ff9b:1::5/128"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", BanWidth{}, "2001:0:4136:e378:8000:63bf:3fff:fdd2/128"},
		{"ff02::1", BanWidth{}, "ff02::1/128"},
		// A welcomelisted neighbour (address, range), a trusted network, or
		// the companion's mynetworks in the network: the client alone.
		{"2001:db8:5:5::7", BanWidth{}, "2001:db8:5:5::7/128"},
		{"198.51.100.30", BanWidth{IPv4: 24}, "198.51.100.30/32"},
		{"198.51.100.30", BanWidth{IPv4: 28}, "198.51.100.30/32"},
		{"198.51.100.40", BanWidth{IPv4: 28}, "198.51.100.32/28"},
		{"2001:db8:6:6::7", BanWidth{}, "2001:db8:6:6::7/128"},
		{"2001:db8:7:7::2", BanWidth{}, "2001:db8:7:7::2/128"},
	}
	for _, tt := range tests {
		if got := BanNet(netip.MustParseAddr(tt.ip), tt.width, spare); got.String() != tt.want {
			t.Errorf("BanNet(%s, %+v) = %s; want %s", tt.ip, tt.width, got, tt.want)
		}
	}
	// 198.51.100.16/28 overlaps the range from .10 to .20 at .16-.20.
	if w := spare.Welcome; !w.Within(netip.MustParsePrefix("198.51.100.16/28")) || w.Within(netip.MustParsePrefix("198.51.100.32/28")) {
		t.Error("Welcomelist.Within: a range's overlap with a network not told")
	}
}

// TestV6ban23BansCoverNetwork: a ban of an IPv6 client keeps out every
// address of its /64 and no other; a welcomelisted or trusted neighbour
// inside a banned network is never refused (only a ban of its own address,
// by hand, holds it); lifting an address inside the network lifts the
// network's ban and says which; a ban file of the version before networks
// (addresses alone) loads and means what it meant.
func TestV6ban23BansCoverNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	clock := newFakeClock()
	b := openTestBans(t, path, clock)
	b.Delay = 0
	spammer := netip.MustParseAddr("2001:db8:1:2::7")
	ban, err := b.Add(spammer, time.Hour, "r: 550 spam")
	if err != nil || ban.Target() != "2001:db8:1:2::/64" || ban.Client != spammer {
		t.Fatalf("Add(%s) = %+v, %v; want a ban of 2001:db8:1:2::/64 for client %s", spammer, ban, err, spammer)
	}
	for ip, want := range map[string]bool{
		"2001:db8:1:2::7": true, "2001:db8:1:2::8": true, "2001:db8:1:2:ffff:ffff:ffff:ffff": true,
		"2001:db8:1:3::7": false, "2001:db8:1:1:ffff:ffff:ffff:ffff": false, "203.0.113.7": false,
	} {
		if _, got := b.Banned(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Banned(%s) = %v; want %v", ip, got, want)
		}
	}

	// A neighbour welcomelisted (or trusted) after the ban is spared.
	wl := v6ban23Welcome(t, "2001:db8:1:2::99\n")
	b.Spare = &Spared{Welcome: wl, Trusted: trustedSet{netip.MustParsePrefix("2001:db8:1:2::100/128")}}
	for ip, want := range map[string]bool{"2001:db8:1:2::99": false, "2001:db8:1:2::100": false, "2001:db8:1:2::8": true} {
		if _, got := b.Banned(netip.MustParseAddr(ip)); got != want {
			t.Errorf("with a welcomelisted and a trusted neighbour: Banned(%s) = %v; want %v", ip, got, want)
		}
		if _, got := b.Due(netip.MustParseAddr(ip)); got != want {
			t.Errorf("with a welcomelisted and a trusted neighbour: Due(%s) = %v; want %v", ip, got, want)
		}
	}
	// The next client banned in a network that holds a welcomelisted
	// address is banned alone.
	if ban, _ := b.Add(netip.MustParseAddr("2001:db8:1:2::5"), time.Hour, "r: x"); ban.Target() != "2001:db8:1:2::5" {
		t.Errorf("ban of a welcomelisted address's neighbour: %s; want the address alone", ban.Target())
	}

	// The file says the network and the client; a reopen reads them back.
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "\n2001:db8:1:2::/64 until=") || !strings.Contains(string(data), " client=2001:db8:1:2::7\n") {
		t.Errorf("ban file:\n%s", data)
	}
	again := openTestBans(t, path, clock)
	if _, ok := again.Banned(netip.MustParseAddr("2001:db8:1:2::abc")); !ok || len(again.Problems()) != 0 {
		t.Errorf("reopened: 2001:db8:1:2::abc not banned (problems %v)", again.Problems())
	}

	// Lifting an address inside the network lifts the network (not the
	// ban of another address in it); lifting the network lifts both.
	lifted, err := b.Lift(netip.MustParsePrefix("2001:db8:1:2::8/128"))
	if err != nil || len(lifted) != 1 {
		t.Fatalf("Lift(2001:db8:1:2::8) = %+v, %v; want the /64", lifted, err)
	}
	if got, want := LiftedText("2001:db8:1:2::8", lifted), "2001:db8:1:2::/64 no longer banned (it held 2001:db8:1:2::8)\n"; got != want {
		t.Errorf("LiftedText = %q; want %q", got, want)
	}
	if _, ok := b.Banned(spammer); ok {
		t.Error("still banned after the network's ban was lifted")
	}
	b.AddNet(netip.MustParsePrefix("2001:db8:1:2::/64"), time.Hour, "by hand")
	if lifted, _ := b.Lift(netip.MustParsePrefix("2001:db8:1:2::/64")); len(lifted) != 2 {
		t.Errorf("Lift(2001:db8:1:2::/64) = %+v; want the /64 and 2001:db8:1:2::5", lifted)
	}
}

// TestV6ban23OldBanFileLoads: a ban file written before networks (bare
// addresses, IPv4 and IPv6) loads unchanged, bans only those addresses,
// and is rewritten the same.
func TestV6ban23OldBanFileLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	old := "# relaykeeper bans: one banned client IP per line, rewritten by relaykeeper.\n" +
		"203.0.113.9 until=2026-11-22T14:00:10Z reason=\"gmail-unsolicited: 550 x\" added=2026-11-22T10:00:00Z from=2026-11-22T10:00:10Z\n" +
		"2001:db8::7 until=2026-11-22T11:00:00Z reason=\"added by hand\" added=2026-11-22T10:00:00Z\n"
	os.WriteFile(path, []byte(old), 0o640)
	clock := newFakeClock()
	clock.Advance(time.Minute)
	b := openTestBans(t, path, clock)
	if p := b.Problems(); len(p) != 0 {
		t.Fatalf("problems reading the old file: %v", p)
	}
	for ip, want := range map[string]bool{"203.0.113.9": true, "203.0.113.10": false, "2001:db8::7": true, "2001:db8::8": false} {
		if _, got := b.Banned(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Banned(%s) = %v; want %v", ip, got, want)
		}
	}
	b.Add(netip.MustParseAddr("198.51.100.1"), time.Hour, "x")
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(old, "\n")[1:] {
		if !strings.Contains(string(data), l) {
			t.Errorf("rewritten file lost %q:\n%s", l, data)
		}
	}
	// Too wide a network, by hand, is a bad line, never a ban of everyone.
	os.WriteFile(path, []byte("::/0 until=2099-01-01T00:00:00Z\n0.0.0.0/0 until=2099-01-01T00:00:00Z\n"), 0o640)
	b = openTestBans(t, path, clock)
	if _, ok := b.Banned(netip.MustParseAddr("2001:db8::1")); ok || len(b.Problems()) != 2 {
		t.Errorf("::/0 and 0.0.0.0/0: banned %v, problems %v; want 2 problems and no ban", ok, b.Problems())
	}
}
