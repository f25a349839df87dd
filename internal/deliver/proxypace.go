package deliver

import (
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
)

// ProxyPace is the pace of a proxy's one upstream: the scheduler's pacing
// (pace.go) for a relay that stores nothing. A proxy opens an upstream
// session for each client's transaction; when the upstream says the relay
// goes too fast (Gmail's "421 4.7.0 Try again later, closing connection",
// "unusual rate of email originating from your IP address"), every client
// that comes next would open another at once, and each retrying client
// again: the storm that keeps the relay's address rate limited. So, as
// the scheduler opens no session to a paced destination for Suspend, the
// proxy answers its clients itself until the pause has passed (Paused).
//
// Only a VerdictPace (the destination) or VerdictQuota (the smarthost
// account's quota: QuotaWindow) pauses; a recipient receiving too fast
// (VerdictPaceRecipient) is that recipient's, whose client hears the
// refusal. Each signal while paced, or within MaxSuspend of the last
// pause's end, doubles the pause up to MaxSuspend. State lives in memory.
// A ProxyPace is safe for concurrent use.
type ProxyPace struct {
	// Verdicts reads the upstream's replies (EngineVerdicts).
	Verdicts Verdicts
	// Options are the scheduler's pace settings ([delivery] pace_*).
	Options PaceOptions
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	until     time.Time // guarded by mu: no upstream session before
	rateUntil time.Time // guarded by mu: until by the rate signals alone, without a quota
	signals   int       // guarded by mu: the signals since pacing began
	reply     string    // guarded by mu: the reply that set the pause
}

func (p *ProxyPace) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Signal hears an upstream's refusal of stage ("greeting", "mail",
// "rcpt", "data command", "data"; the scheduler's Result.Stage) and
// pauses the proxy if it asks the relay to slow down. It reports whether
// it did.
func (p *ProxyPace) Signal(stage string, rep reply.Reply) bool {
	if p == nil || p.Verdicts == nil || rep.Code < 400 {
		return false
	}
	v := p.Verdicts.Verdict(Result{Reply: rep, Stage: stage})
	if v != VerdictPace && v != VerdictQuota {
		return false
	}
	o := p.Options
	o.defaults()
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.signals > 0 && now.After(p.until.Add(o.MaxSuspend)) {
		p.signals = 0 // the last pause is long over: start again
	}
	p.signals++
	var until time.Time
	if v == VerdictQuota {
		until = now.Add(o.QuotaWindow)
	} else {
		suspend := o.Suspend
		for i := 1; i < p.signals && suspend < o.MaxSuspend; i++ {
			suspend *= 2
		}
		until = now.Add(min(suspend, o.MaxSuspend))
	}
	if until.After(p.until) {
		p.until = until
	}
	if v == VerdictPace && until.After(p.rateUntil) {
		p.rateUntil = until
	}
	p.reply = rep.String()
	return true
}

// Paused says until when no session may go to the upstream, and the
// reply that asked for it; false when sessions may go now.
func (p *ProxyPace) Paused() (until time.Time, why string, paused bool) {
	if p == nil {
		return time.Time{}, "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.now().Before(p.until) {
		return time.Time{}, "", false
	}
	return p.until, p.reply, true
}

// pausedFor is Paused for a session of the scheduler's to the upstream.
// One that logs in with another account (otherAccount) waits out only
// the rate pauses, which are the relay's address's: the quota is the
// proxy's account's, and another account's is its own (the scheduler
// paces that account's destination when it says so itself).
func (p *ProxyPace) pausedFor(otherAccount bool) (time.Time, bool) {
	until, _, paused := p.Paused()
	if !paused || !otherAccount {
		return until, paused
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.now().Before(p.rateUntil) {
		return time.Time{}, false
	}
	return p.rateUntil, true
}

// ProxyPace is a proxy's pace with its upstream by s's verdicts and pace
// settings, the same reading of a reply as s's deliveries; the same one at
// every call. While it pauses the proxy, s opens no session to the same
// upstream (Options.Upstream) either: a proxy's scheduler carries what
// the relay queues itself (bounce reports, encapsulations), and a session
// of its own to an upstream that said "slow down" is one more of the
// storm the proxy's pause holds back.
func (s *Scheduler) ProxyPace() *ProxyPace {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proxyPace == nil {
		s.proxyPace = &ProxyPace{Verdicts: s.opts.Verdicts, Options: s.opts.Pace, Now: s.clock.Now}
	}
	return s.proxyPace
}

// destPaused is paused for dst's key, and also while the proxy's pace
// (ProxyPace) holds when dst is the proxy's upstream: whichever ends last.
// The proxy's quota holds only dst under the proxy's own account.
func (s *Scheduler) destPaused(dst route.Destination) (time.Time, bool) {
	until, ok := s.paused(dst.Key)
	s.mu.Lock()
	pp := s.proxyPace
	s.mu.Unlock()
	if pp == nil || dst.Upstream == "" || !strings.EqualFold(dst.Upstream, s.opts.Upstream) {
		return until, ok
	}
	if u, paused := pp.pausedFor(dst.OtherAccount()); paused && u.After(until) {
		return u, true
	}
	return until, ok
}
