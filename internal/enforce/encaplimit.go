package enforce

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// encapLimiter bounds the encapsulated copies one client's mail makes
// (Enforcer.EncapsulateRateLimit): a welcomelisted or local client whose
// every message the upstream refuses as spam would otherwise have the
// relay send one copy per refused recipient, as many as it likes, each
// costing the relay's own reputation.
//
// A limit of N an hour is a token bucket of N copies refilled over the
// hour, kept per client: an IPv4 address, an IPv6 /64 (a client moves
// about its /64 at will, as for bans). The buckets of clients that are
// back to full are dropped when there are many.
//
// A refusal needs one copy per recipient, all or none (the client hears
// one reply for them: in proxy mode, one for all of a message's
// recipients). One that needs more than N would never fit in the bucket,
// and its message would never be encapsulated however quiet its client
// had been: it is let through when the bucket is full, and the copies past
// N are owed, so that the client's next copies wait for them. Over time
// the copies stay at N an hour.
type encapLimiter struct {
	mu      sync.Mutex
	clients map[netip.Prefix]*rate.Limiter // guarded by mu
}

// encapSweepAt is how many clients' buckets are kept before full ones go.
const encapSweepAt = 4096

// allow reports whether the client at ip may have n more copies now, at
// most limit an hour, and counts them if so. limit <= 0: no limit. Local
// submissions (ip invalid) share one bucket.
func (l *encapLimiter) allow(limit int, ip netip.Addr, n int, now time.Time) bool {
	if limit <= 0 {
		return true
	}
	key := netip.Prefix{}
	if ip.IsValid() {
		key = BanNet(ip, BanWidth{}, nil)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients = map[netip.Prefix]*rate.Limiter{}
	}
	lim := l.clients[key]
	if lim == nil {
		if len(l.clients) >= encapSweepAt {
			for k, c := range l.clients {
				if c.TokensAt(now) >= float64(c.Burst()) {
					delete(l.clients, k)
				}
			}
		}
		lim = rate.NewLimiter(rate.Limit(float64(limit)/time.Hour.Seconds()), limit)
		l.clients[key] = lim
	}
	if n <= limit {
		return lim.AllowN(now, n)
	}
	if lim.TokensAt(now) < float64(limit) {
		return false
	}
	for left := n; left > 0; left -= limit {
		lim.ReserveN(now, min(left, limit)) // never refused: it waits for tokens to come
	}
	return true
}

// encapLimitText says why a refused message was not encapsulated.
func encapLimitText(limit int) string {
	return fmt.Sprintf("the client's limit of %d encapsulated copies an hour is reached ([enforce] encapsulate_rate_limit)", limit)
}
