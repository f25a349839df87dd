package enforce

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
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

// TestLo28BanOfNetworkSparesQueuedMailWelcomedByName: a ban of a
// spammer's IPv6 /64 holds the queued mail of every client in it but those
// the welcomelist spares. A neighbour listed by address was spared; one
// listed by host name had its queued mail held, as if it were the spammer,
// though its connections and new mail were no longer refused. Its mail
// now stays ready; another neighbour's is held.
func TestLo28BanOfNetworkSparesQueuedMailWelcomedByName(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	queue := func(client, name string) string {
		return queueEnvelope(t, sp, &spool.Envelope{From: "a@example.org", Client: "[" + client + "]:4000", ClientName: name,
			Arrival: time.Now(), Recipients: []spool.Recipient{{Addr: "x@gmail.test", Status: spool.Pending}}})
	}
	partner := queue("2001:db8:28::99", "mx.partner28.test")
	other := queue("2001:db8:28::50", "")
	bans, err := OpenBans(filepath.Join(dir, "bans"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bans.Spare = &Spared{Welcome: v6ban23Welcome(t, `^mx\.partner28\.test$`+"\n")}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Bans: bans,
		MailLog: maillog.New(nil)}
	rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("2001:db8:28::7"), From: "eve@spam.example",
		To: []string{"u@gmail.com"}, Upstream: upstream(gmailUnsolicited)}
	rf.Host = "gmail-smtp-in.l.google.com[142.250.1.26]:25"
	e.Act(context.Background(), rf)
	if b, banned := bans.Due(netip.MustParseAddr("2001:db8:28::50")); !banned || b.Target() != "2001:db8:28::/64" {
		t.Fatalf("ban %+v, %v; want the spammer's /64", b, banned)
	}
	for id, want := range map[string]spool.State{partner: spool.Ready, other: spool.Held} {
		if _, st, err := sp.Read(id); err != nil || st != want {
			t.Errorf("message %s: %v, %v; want %v", id, st, err, want)
		}
	}
}
