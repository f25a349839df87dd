package anvil

import (
	"net/netip"
	"testing"
	"time"
)

func TestAnvil(t *testing.T) {
	now := time.Unix(1e9, 0)
	a := New(Limits{Messages: 3, Unit: time.Minute})
	a.now = func() time.Time { return now }
	ip := netip.MustParseAddr("192.0.2.1")
	other := netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if !a.Allow(ip, Message) {
			t.Fatalf("message %d refused", i+1)
		}
	}
	if a.Allow(ip, Message) {
		t.Error("fourth message in the same instant allowed")
	}
	if !a.Allow(other, Message) || !a.Allow(ip, Connect) || !a.Allow(ip, Recipient) {
		t.Error("another client, or an event without a limit, refused")
	}
	now = now.Add(20 * time.Second) // a third of the unit: one message back
	if !a.Allow(ip, Message) || a.Allow(ip, Message) {
		t.Error("after a third of the unit: want exactly one more")
	}
	// One IPv6 host's addresses in one /84 share a rate.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	for range 3 {
		a.Allow(v6a, Message)
	}
	if a.Allow(v6b, Message) {
		t.Error("a second address of the same /84 has its own rate")
	}
	// Full buckets are forgotten.
	now = now.Add(time.Hour)
	a.Allow(other, Message) // sweeps, then counts other anew
	if len(a.clients) != 1 {
		t.Errorf("%d clients kept after an hour", len(a.clients))
	}
	if New(Limits{}) != nil {
		t.Error("no limits: want nil")
	}
	var none *Anvil
	if !none.Allow(ip, Message) {
		t.Error("nil Anvil refused")
	}
}
