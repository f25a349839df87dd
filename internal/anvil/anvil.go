// Package anvil bounds how fast each client may connect, send messages
// and name recipients, as Postfix's anvil(8) does for
// smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit and
// smtpd_client_recipient_rate_limit: a client that exceeds a limit is put
// off with a temporary refusal until its rate falls again.
//
// A limit of N per time unit is a token bucket (golang.org/x/time/rate)
// of N tokens refilled over the unit: at most N events at once, and N
// per unit on average. Postfix counts in fixed windows, which lets a
// client put twice the limit across a window's edge; the bucket does not.
package anvil

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the rates; zero turns one off.
type Limits struct {
	Connections, Messages, Recipients int
	// Unit is Postfix's anvil_rate_time_unit; zero means 60 s.
	Unit time.Duration
}

// Event is what a client does.
type Event int

// The events each limit counts.
const (
	Connect Event = iota
	Message
	Recipient
)

// Anvil keeps the clients' rates. It is safe for concurrent use.
type Anvil struct {
	limits    Limits
	mu        sync.Mutex
	clients   map[netip.Prefix]*[3]*rate.Limiter
	lastSweep time.Time
	now       func() time.Time
}

// New returns an Anvil, or nil if no limit is set.
func New(l Limits) *Anvil {
	if l.Connections <= 0 && l.Messages <= 0 && l.Recipients <= 0 {
		return nil
	}
	if l.Unit <= 0 {
		l.Unit = time.Minute
	}
	return &Anvil{limits: l, clients: make(map[netip.Prefix]*[3]*rate.Limiter), now: time.Now}
}

// client is what a rate is kept for: an IPv4 address, or an IPv6 /84,
// Postfix 3.8's smtpd_client_ipv6_prefix_length, since one IPv6 host
// can use a whole range of addresses.
func client(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(84)
	return p
}

// Allow counts one event of ip's and reports whether it is within its
// limit; a nil Anvil allows everything.
func (a *Anvil) Allow(ip netip.Addr, ev Event) bool {
	if a == nil {
		return true
	}
	limit := [3]int{a.limits.Connections, a.limits.Messages, a.limits.Recipients}[ev]
	if limit <= 0 {
		return true
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(now)
	k := client(ip)
	ls := a.clients[k]
	if ls == nil {
		ls = new([3]*rate.Limiter)
		a.clients[k] = ls
	}
	if ls[ev] == nil {
		ls[ev] = rate.NewLimiter(rate.Limit(float64(limit)/a.limits.Unit.Seconds()), limit)
	}
	return ls[ev].AllowN(now, 1)
}

// sweep forgets, once a unit, the clients whose buckets are full again:
// they are where a new client would start.
func (a *Anvil) sweep(now time.Time) {
	if now.Sub(a.lastSweep) < a.limits.Unit {
		return
	}
	a.lastSweep = now
	for k, ls := range a.clients {
		full := true
		for _, l := range ls {
			if l != nil && l.TokensAt(now) < float64(l.Burst()) {
				full = false
			}
		}
		if full {
			delete(a.clients, k)
		}
	}
}
