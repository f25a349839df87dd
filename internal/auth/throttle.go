package auth

import (
	"container/list"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// throttleLimit is how many client addresses a Throttle remembers.
const throttleLimit = 10000

// Throttle counts failed logins per client address. An address that has
// failed maxFailures times within the last window is refused (Allow is
// false) until the oldest of those failures is older than window; then the
// SMTP layer answers "454 4.7.0 Too many authentication failures; try again
// later", or drops the connection. A success forgets the address's failures
// with the same user name, a user's own mistyped password; the others stay
// until the window passes, so that whoever holds one account cannot clear
// the count between guesses at another's password by logging in.
//
// IPv4 addresses are counted one by one, IPv6 addresses by /64, since one
// host commonly holds a whole /64. Memory is bounded: the Throttle remembers
// at most 10000 addresses and forgets the one whose last failure is oldest
// first, so an attacker with more addresses than that gets extra attempts
// but cannot grow the process.
//
// A Throttle is safe for concurrent use. A nil *Throttle allows everything,
// as does one made with maxFailures or window not positive.
type Throttle struct {
	max    int
	window time.Duration
	now    func() time.Time
	limit  int
	seed   maphash.Seed // of the user names' hashes (failure.user)

	mu    sync.Mutex
	byKey map[netip.Prefix]*list.Element // guarded by mu; values in lru
	lru   *list.List                     // guarded by mu; *throttleEntry, latest failure at the front
	turns map[netip.Prefix]*turn         // guarded by mu; the keys with a login under way (Serialize)
}

// turn lets one login at a time check its password for a key.
type turn struct {
	mu      sync.Mutex
	waiting int // logins holding or waiting for mu; guarded by Throttle.mu
}

// throttleEntry is one address's recent failures, oldest first, at most max.
type throttleEntry struct {
	key   netip.Prefix
	fails []failure
}

// failure is one failed login: when, and the user name it tried ("" when
// unknown), kept as a hash with the Throttle's random seed: a few octets
// whatever the name's length, and names that differ anywhere, even past
// their first hundreds of octets, are told apart.
type failure struct {
	at   time.Time
	user uint64
}

// NewThrottle returns a Throttle that allows maxFailures failed logins per
// address within window. clock is the time source (time.Now if nil).
func NewThrottle(maxFailures int, window time.Duration, clock func() time.Time) *Throttle {
	if clock == nil {
		clock = time.Now
	}
	return &Throttle{
		max:    maxFailures,
		window: window,
		now:    clock,
		limit:  throttleLimit,
		seed:   maphash.MakeSeed(),
		byKey:  make(map[netip.Prefix]*list.Element),
		lru:    list.New(),
		turns:  make(map[netip.Prefix]*turn),
	}
}

// Serialize waits until no other login from ip's address (its /64 for
// IPv6) is checking a password, and returns the function that ends this
// one's turn. A caller that checks a password holds the turn from Allow
// to Fail or Succeed: otherwise logins sent at once on many connections
// were all allowed before the first of them failed, and an attacker got
// as many guesses as it had connections instead of the limit. Logins from
// other addresses do not wait.
func (t *Throttle) Serialize(ip netip.Addr) (done func()) {
	if t.disabled() {
		return func() {}
	}
	key := throttleKey(ip)
	t.mu.Lock()
	tn := t.turns[key]
	if tn == nil {
		tn = &turn{}
		t.turns[key] = tn
	}
	tn.waiting++
	t.mu.Unlock()
	tn.mu.Lock()
	return func() {
		tn.mu.Unlock()
		t.mu.Lock()
		if tn.waiting--; tn.waiting == 0 {
			delete(t.turns, key)
		}
		t.mu.Unlock()
	}
}

func (t *Throttle) disabled() bool { return t == nil || t.max <= 0 || t.window <= 0 }

// throttleKey is the unit counted: the address, or its /64 for IPv6.
func throttleKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, ip.BitLen())
}

// Allow reports whether ip may try to log in now.
func (t *Throttle) Allow(ip netip.Addr) bool {
	if t.disabled() {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byKey[throttleKey(ip)]
	if !ok {
		return true
	}
	e := el.Value.(*throttleEntry)
	t.expire(e)
	if len(e.fails) == 0 {
		t.remove(el)
		return true
	}
	return len(e.fails) < t.max
}

// Fail records a failed login from ip that tried user ("" if unknown).
func (t *Throttle) Fail(ip netip.Addr, user string) {
	if t.disabled() {
		return
	}
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byKey[key]
	if !ok {
		for t.lru.Len() >= t.limit {
			t.remove(t.lru.Back())
		}
		el = t.lru.PushFront(&throttleEntry{key: key})
		t.byKey[key] = el
	}
	e := el.Value.(*throttleEntry)
	t.expire(e)
	e.fails = append(e.fails, failure{at: t.now(), user: maphash.String(t.seed, user)})
	if len(e.fails) > t.max {
		e.fails = append(e.fails[:0], e.fails[len(e.fails)-t.max:]...)
	}
	t.lru.MoveToFront(el)
}

// Succeed forgets ip's failures that tried user: the ones of other names
// stay until the window passes.
func (t *Throttle) Succeed(ip netip.Addr, user string) {
	if t.disabled() {
		return
	}
	h := maphash.String(t.seed, user)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byKey[throttleKey(ip)]
	if !ok {
		return
	}
	e := el.Value.(*throttleEntry)
	e.fails = slices.DeleteFunc(e.fails, func(f failure) bool { return f.user == h })
	if len(e.fails) == 0 {
		t.remove(el)
	}
}

// expire drops failures older than the window. t.mu is held.
func (t *Throttle) expire(e *throttleEntry) {
	cutoff := t.now().Add(-t.window)
	i := 0
	for i < len(e.fails) && !e.fails[i].at.After(cutoff) {
		i++
	}
	if i > 0 {
		e.fails = append(e.fails[:0], e.fails[i:]...)
	}
}

// remove forgets an entry. t.mu is held.
func (t *Throttle) remove(el *list.Element) {
	delete(t.byKey, el.Value.(*throttleEntry).key)
	t.lru.Remove(el)
}
