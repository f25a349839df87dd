package deliver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// Pacing follows KumoMTA's traffic shaping automation: a reply that says
// "too fast" suspends new sessions to the destination for a while; then the
// destination resumes with one session at a time and a delay between
// deliveries, which grows with every further signal and decays with every
// delivery, until the destination is back to its normal limits. Nothing is
// bounced and nobody is sanctioned for it; the mail waits in the queue.
//
// Pacing state lives in memory: a restart forgets it, and the next rate
// reply sets it again.

// PaceOptions say how the scheduler slows down. Zero fields take the
// defaults in the comments.
type PaceOptions struct {
	// Suspend is how long no new session goes to a destination after a
	// rate reply (60s). Each further signal while paced doubles it, up to
	// MaxSuspend (1h). A recipient that says 4.2.1 is suspended alone.
	Suspend, MaxSuspend time.Duration
	// Delay is the pause between deliveries when a paced destination
	// resumes (5s). Each further signal doubles it, up to MaxDelay (5m);
	// each delivery takes a quarter off, and the destination is no
	// longer paced once the delay falls under a tenth of Delay.
	Delay, MaxDelay time.Duration
	// QuotaWindow is how long everything to a destination waits after it
	// said the account's sending quota is used up (24h: Gmail's daily
	// limit is a rolling 24-hour window).
	QuotaWindow time.Duration
}

func (p *PaceOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.Suspend, time.Minute)
	def(&p.MaxSuspend, time.Hour)
	def(&p.Delay, 5*time.Second)
	def(&p.MaxDelay, 5*time.Minute)
	def(&p.QuotaWindow, 24*time.Hour)
	p.MaxSuspend = max(p.MaxSuspend, p.Suspend)
	p.MaxDelay = max(p.MaxDelay, p.Delay)
}

// Pace is one destination's (or recipient's) current pace.
type Pace struct {
	// Destination is the destination key, or "rcpt:" and an address for
	// a recipient paced alone.
	Destination string `json:"destination"`
	// Until is when new sessions may start again; zero if they may now.
	Until time.Time `json:"until,omitzero"`
	// Delay is the pause kept between deliveries.
	Delay time.Duration `json:"delay"`
	// Concurrency is the session limit while paced.
	Concurrency int `json:"concurrency"`
	// Signals counts the rate replies since pacing began.
	Signals int `json:"signals"`
	// Quota marks a destination waiting for its sending quota.
	Quota bool `json:"quota,omitempty"`
	// Reply is the reply that set the pace last.
	Reply string `json:"reply"`
}

// Describe says in words where the pace stands at now, on one line.
func (p Pace) Describe(now time.Time) string {
	what := fmt.Sprintf("one session at a time, %s between deliveries", p.Delay)
	switch {
	case p.Quota:
		what = "sending quota used up"
	case strings.HasPrefix(p.Destination, rcptPrefix):
		what = "recipient receiving too fast"
	}
	if p.Until.After(now) {
		what += "; no new session until " + p.Until.UTC().Format("2006-01-02 15:04:05") +
			" (in " + p.Until.Sub(now).Round(time.Second).String() + ")"
	}
	return fmt.Sprintf("%s  %s; %d signal(s); last reply: %s", p.Destination, what, p.Signals, p.Reply)
}

// pacing is the scheduler's pace per key, guarded by Scheduler.mu.
type pacing map[string]*Pace

const rcptPrefix = "rcpt:"

// maxPaces bounds the paces kept: a client that mails many recipients, or
// domains, of its own whose servers all say "too fast" must not make the
// scheduler keep, and save at every signal, a pace for each.
const maxPaces = 1000

// Paces returns every destination's current pace, sorted by destination:
// the accessor for the queue listing, statistics and metrics.
func (s *Scheduler) Paces() []Pace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pacesLocked()
}

func (s *Scheduler) pacesLocked() []Pace {
	out := make([]Pace, 0, len(s.paces))
	for _, p := range s.paces {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Pace) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

// paceSignal records a verdict about key's sending rate.
func (s *Scheduler) paceSignal(key string, v Verdict, rep reply.Reply) {
	o := &s.opts.Pace
	now := s.clock.Now()
	s.mu.Lock()
	p := s.paces[key]
	if p == nil {
		p = &Pace{Destination: key, Concurrency: 1}
		s.paces[key] = p
	}
	ended := s.prunePacesLocked(now, key)
	p.Signals++
	p.Reply = rep.String()
	switch v {
	case VerdictQuota:
		p.Quota = true
		p.Until = now.Add(o.QuotaWindow)
	default:
		suspend := o.Suspend
		for i := 1; i < p.Signals && suspend < o.MaxSuspend; i++ {
			suspend *= 2
		}
		p.Until = now.Add(min(suspend, o.MaxSuspend))
		if p.Delay == 0 {
			p.Delay = o.Delay
		} else {
			p.Delay = min(2*p.Delay, o.MaxDelay)
		}
	}
	snap := *p
	s.mu.Unlock()
	for _, k := range ended {
		s.opts.MailLog.Resume(k)
	}
	if !strings.HasPrefix(key, rcptPrefix) {
		s.closeIdle(key)
	}
	s.opts.MailLog.Pace(key, v.String(), snap.Until, snap.Delay, snap.Concurrency, snap.Reply)
	s.savePaces()
}

// prunePacesLocked forgets the paces that are over but that no delivery
// ended (only a delivery does): a quota window passed, or a suspension
// that ended pace_max_suspend ago with no signal since (the recipient
// bounced, the destination got no more mail), unless a destination's
// delay has grown past pace_delay (it said "too fast" again: it is still
// gone to slowly). Then, beyond maxPaces, it forgets those whose
// suspension ends first, recipients' before destinations' (a quota's
// only when all are quotas, the one set last first; never keep's). It
// returns the keys forgotten.
func (s *Scheduler) prunePacesLocked(now time.Time, keep string) []string {
	var ended []string
	forget := func(k string) {
		delete(s.paces, k)
		ended = append(ended, k)
	}
	for k, p := range s.paces {
		over := p.Until
		if !p.Quota {
			over = over.Add(s.opts.Pace.MaxSuspend)
		}
		slowed := !p.Quota && !strings.HasPrefix(k, rcptPrefix) && p.Delay > s.opts.Pace.Delay
		if k != keep && !slowed && !now.Before(over) {
			forget(k)
		}
	}
	for len(s.paces) > maxPaces {
		first := ""
		before := func(k string, p *Pace) bool {
			f := s.paces[first]
			if r, fr := strings.HasPrefix(k, rcptPrefix), strings.HasPrefix(first, rcptPrefix); r != fr {
				return r
			}
			return p.Until.Before(f.Until)
		}
		for k, p := range s.paces {
			if k != keep && !p.Quota && (first == "" || before(k, p)) {
				first = k
			}
		}
		if first == "" {
			// Only quotas: delivering by MX, any server may say
			// "5.4.5 Daily user sending limit exceeded", and a client
			// mailing domains of its own made a quota for each. The
			// one set last goes: a smarthost's, set before the
			// flood, stays.
			for k, p := range s.paces {
				if k != keep && (first == "" || p.Until.After(s.paces[first].Until)) {
					first = k
				}
			}
		}
		if first == "" {
			break
		}
		forget(first)
	}
	return ended
}

// paceSuccess decays key's pace after a delivery.
func (s *Scheduler) paceSuccess(key string) {
	s.mu.Lock()
	p := s.paces[key]
	if p == nil || p.Quota || s.clock.Now().Before(p.Until) {
		s.mu.Unlock()
		return
	}
	p.Delay -= p.Delay / 4
	ended := strings.HasPrefix(key, rcptPrefix) || p.Delay < s.opts.Pace.Delay/10
	s.mu.Unlock()
	if ended {
		s.endPace(key)
	} else {
		s.savePaces()
	}
}

// endPace puts key back to its normal limits.
func (s *Scheduler) endPace(key string) {
	s.mu.Lock()
	delete(s.paces, key)
	s.mu.Unlock()
	s.opts.MailLog.Resume(key)
	s.savePaces()
}

// paused returns when key may get a new session, if not now. A quota wait
// that has passed ends there.
func (s *Scheduler) paused(key string) (time.Time, bool) {
	now := s.clock.Now()
	s.mu.Lock()
	p := s.paces[key]
	if p == nil || !now.Before(p.Until) {
		ended := p != nil && p.Quota
		s.mu.Unlock()
		if ended {
			s.endPace(key)
		}
		return time.Time{}, false
	}
	until := p.Until
	s.mu.Unlock()
	return until, true
}

// paced returns the concurrency limit and delay a paced destination keeps,
// or limit and delay unchanged.
func (s *Scheduler) paced(key string, limit int, delay time.Duration) (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.paces[key]
	if p == nil {
		return limit, delay
	}
	return p.Concurrency, max(delay, p.Delay)
}

// PaceFile is where the scheduler keeps its current paces in the spool
// directory, for `relaykeeper queue list` in another process.
const PaceFile = ".relaykeeper.pace"

// savePaces writes the paces for other processes to read; a failure is
// logged, since pacing itself goes on in memory.
func (s *Scheduler) savePaces() {
	if s.opts.Spool == nil {
		return
	}
	s.mu.Lock()
	ps := s.pacesLocked()
	s.mu.Unlock()
	path := filepath.Join(s.opts.Spool.Dir(), PaceFile)
	err := safefile.Replace(path, safefile.Options{Perm: 0o644}, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(ps)
	})
	if err != nil {
		s.log.Warn("pace state not saved", "file", path, "err", err)
	}
}

// removePaces removes the pace file when the scheduler stops: the paces
// live in its memory only.
func (s *Scheduler) removePaces() {
	if s.opts.Spool != nil {
		os.Remove(filepath.Join(s.opts.Spool.Dir(), PaceFile))
	}
}

// RunningPaces are the paces of the relay running on the spool directory,
// for "queue list": none when no relay runs there (no pidFile), since a
// pace file a killed relay left behind is stale.
func RunningPaces(spoolDir, pidFile string) ([]Pace, error) {
	if _, err := os.Stat(filepath.Join(spoolDir, pidFile)); err != nil {
		return nil, nil
	}
	return ReadPaces(spoolDir)
}

// ReadPaces reads the paces a running scheduler saved in a spool
// directory; none if it saved none.
func ReadPaces(spoolDir string) ([]Pace, error) {
	b, err := os.ReadFile(filepath.Join(spoolDir, PaceFile))
	if errors.Is(err, os.ErrNotExist) || len(b) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ps []Pace
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}
