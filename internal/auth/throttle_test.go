package auth

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestThrottle(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(3, time.Minute, clock.now)
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")

	// Each step: an action on a, then Allow(a) and Allow(b).
	steps := []struct {
		do   string // "fail a", "fail b", "ok a", "wait 10s"
		a, b bool
	}{
		{"fail a", true, true},
		{"wait 10s", true, true},
		{"fail a", true, true},
		{"fail a", false, true}, // third failure within the minute
		{"wait 45s", false, true},
		{"wait 6s", true, true}, // the first failure (at 0s) left the window at 60s
		{"fail a", false, true},
		{"fail b", false, true},
		{"ok a", true, true},
		{"fail a", true, true},
		{"wait 2m", true, true},
	}
	for i, st := range steps {
		switch st.do {
		case "fail a":
			th.Fail(a, "u")
		case "fail b":
			th.Fail(b, "u")
		case "ok a":
			th.Succeed(a, "u")
		default:
			d, err := time.ParseDuration(st.do[len("wait "):])
			if err != nil {
				t.Fatal(err)
			}
			clock.advance(d)
		}
		if got := th.Allow(a); got != st.a {
			t.Errorf("step %d (%s): Allow(a) = %v; want %v", i, st.do, got, st.a)
		}
		if got := th.Allow(b); got != st.b {
			t.Errorf("step %d (%s): Allow(b) = %v; want %v", i, st.do, got, st.b)
		}
	}
	if n := len(th.byKey); n != 0 {
		t.Errorf("%d addresses remembered after every failure expired; want 0", n)
	}
}

func TestThrottleIPv6Per64(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	th := NewThrottle(2, time.Hour, clock.now)
	th.Fail(netip.MustParseAddr("2001:db8:1:2::1"), "u")
	th.Fail(netip.MustParseAddr("2001:db8:1:2:ffff::9"), "u")
	tests := []struct {
		ip   string
		want bool
	}{
		{"2001:db8:1:2::77", false},
		{"2001:db8:1:3::1", true},
		{"::ffff:192.0.2.1", true},
	}
	for _, tt := range tests {
		if got := th.Allow(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Allow(%s) = %v; want %v", tt.ip, got, tt.want)
		}
	}
	th.Fail(netip.MustParseAddr("::ffff:192.0.2.1"), "u")
	th.Fail(netip.MustParseAddr("192.0.2.1"), "u")
	if th.Allow(netip.MustParseAddr("192.0.2.1")) {
		t.Error("an IPv4-mapped address and the IPv4 address are counted apart")
	}
}

func TestThrottleBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	th := NewThrottle(1, time.Hour, clock.now)
	th.limit = 3
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	for i := 1; i <= 5; i++ {
		th.Fail(ip(i), "u")
		clock.advance(time.Second)
	}
	if n := th.lru.Len(); n != 3 || len(th.byKey) != 3 {
		t.Fatalf("remembered %d (map %d); want 3", n, len(th.byKey))
	}
	// 1 and 2 failed longest ago and were forgotten.
	for i, want := range map[int]bool{1: true, 2: true, 3: false, 4: false, 5: false} {
		if got := th.Allow(ip(i)); got != want {
			t.Errorf("Allow(%s) = %v; want %v", ip(i), got, want)
		}
	}
	// A new failure of 3 makes it the latest, so 4 goes next.
	th.Fail(ip(3), "u")
	th.Fail(ip(6), "u")
	if th.Allow(ip(3)) || !th.Allow(ip(4)) {
		t.Errorf("Allow(3), Allow(4) = %v, %v; want false, true", th.Allow(ip(3)), th.Allow(ip(4)))
	}
}

func TestThrottleDisabled(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	for _, th := range []*Throttle{nil, NewThrottle(0, time.Minute, nil), NewThrottle(3, 0, nil)} {
		for i := 0; i < 10; i++ {
			th.Fail(ip, "u")
		}
		th.Succeed(ip, "u")
		th.Fail(ip, "u")
		if !th.Allow(ip) {
			t.Errorf("%+v: Allow = false; want true", th)
		}
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th := NewThrottle(5, time.Minute, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ip := netip.AddrFrom4([4]byte{10, byte(g), 0, byte(i)})
				th.Fail(ip, "u")
				th.Allow(ip)
				if i%3 == 0 {
					th.Succeed(ip, "u")
				}
			}
		}()
	}
	wg.Wait()
}

// TestRevTLSThrottleSerialize: a second login from the same address (the
// same /64 for IPv6) waits for the first one's turn to end; one from
// another address does not; and no turn is kept once all have ended.
func TestRevTLSThrottleSerialize(t *testing.T) {
	th := NewThrottle(3, time.Minute, nil)
	a := netip.MustParseAddr("2001:db8::1")
	sameNet := netip.MustParseAddr("2001:db8::2")
	other := netip.MustParseAddr("192.0.2.1")
	done := th.Serialize(a)
	th.Serialize(other)() // not held up
	second := make(chan struct{})
	go func() {
		th.Serialize(sameNet)()
		close(second)
	}()
	select {
	case <-second:
		t.Fatal("a login from the same /64 did not wait for the turn of the one under way")
	case <-time.After(100 * time.Millisecond):
	}
	done()
	select {
	case <-second:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting login never got its turn")
	}
	th.mu.Lock()
	n := len(th.turns)
	th.mu.Unlock()
	if n != 0 {
		t.Errorf("%d turns kept after every login ended; want 0", n)
	}
	var nilThrottle *Throttle
	nilThrottle.Serialize(a)() // allows everything, waits for nothing
}

// TestRev23ThrottleLongNamesApart: two user names that share their first
// 256 octets are two users: a login as one must not forget the guesses at
// the other (the throttle kept names cut at 256 octets, so it did).
func TestRev23ThrottleLongNamesApart(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	th := NewThrottle(3, time.Hour, clock.now)
	ip := netip.MustParseAddr("192.0.2.7")
	prefix := strings.Repeat("x", 300)
	victim, mine := prefix+"bob", prefix+"alice"
	for i := 0; i < 3; i++ {
		if !th.Allow(ip) {
			t.Fatalf("guess %d refused; want allowed", i+1)
		}
		th.Fail(ip, victim)
		th.Succeed(ip, mine)
	}
	if th.Allow(ip) {
		t.Error("three guesses at one long name, each followed by a login as another sharing its first 256 octets: still allowed")
	}
	// The same name, however long, is still forgotten by its own login.
	th2 := NewThrottle(2, time.Hour, clock.now)
	th2.Fail(ip, victim)
	th2.Fail(ip, victim)
	th2.Succeed(ip, victim)
	if !th2.Allow(ip) {
		t.Error("a long name's own login did not forget its failures")
	}
}
