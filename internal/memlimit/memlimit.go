// Package memlimit keeps the Go runtime's soft memory limit in step with
// the number of open SMTP sessions.
//
// Without a limit the runtime lets the heap grow to twice what is live
// before it collects, and further while a collection under way gets too
// little CPU: with 100 sessions of 100 KB messages on two busy cores the
// heap reached three to four times its live size. A soft limit
// (runtime/debug.SetMemoryLimit) makes the runtime collect earlier instead.
// A fixed limit would be wrong for a relay whose load varies: below what is
// live the runtime collects without pause (up to half the CPU). So the
// limit here is the base plus an allowance for every open session, and
// never less than one and a half times the heap live after the last
// collection plus 4 MiB: memory that is not the sessions' (the scheduler's
// queue of a large spool) raises it too, and the runtime then collects no
// more often than with GOGC=50.
//
// With the limit in charge, the runtime's proportional trigger is raised
// from GOGC=100 to gcPercent: a relay's live heap is small (1-2 MiB), and
// GOGC=100 collected every 2-4 MiB allocated, every 32 messages at ten
// sessions, a tenth of the relay's CPU. The limit still bounds the heap.
//
// The limit is soft: the runtime exceeds it rather than fail an
// allocation. An operator's GOMEMLIMIT (environment) wins: a Budget then
// changes nothing; so does GOGC for the trigger.
package memlimit

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// step is how many sessions make one change of the limit, so that a busy
// listener does not set it at every connection.
const step = 16

// Budget sets the limit as sessions open and close. Its methods are safe
// for concurrent use; a nil *Budget does nothing.
type Budget struct {
	base, perSession int64
	off              bool

	mu       sync.Mutex // guards the fields below
	sessions int64
	live     int64 // the heap live after the last collection
	set      int64 // the limit last set
	sample   []metrics.Sample
	stopped  bool
}

// gcPercent is the proportional trigger under the limit: 311 collections
// for 10,000 messages at ten sessions with GOGC=100, 97 with 400 (66 and
// 15 µs of marking CPU a message; bench/README.md).
const gcPercent = 400

// headroom is added to the live heap's share of the limit.
const headroom = 4 << 20

// New returns a Budget and sets the limit for no sessions. A base of 0, or
// GOMEMLIMIT in the environment, leaves the runtime's limit alone.
func New(base, perSession int64) *Budget {
	b := &Budget{base: base, perSession: perSession, off: base <= 0 || os.Getenv("GOMEMLIMIT") != ""}
	if !b.off {
		b.set = b.Limit(0, 0)
		debug.SetMemoryLimit(b.set)
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercent)
		}
	}
	if !b.off {
		b.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		b.watch()
	}
	return b
}

// gcSentinel's finalizer runs once per collection (the object is
// unreachable from the start), and arms the next one: the Budget follows
// the live heap until Stop.
type gcSentinel struct{ b *Budget }

func (b *Budget) watch() {
	runtime.SetFinalizer(&gcSentinel{b}, func(s *gcSentinel) {
		if s.b.afterGC() {
			s.b.watch()
		}
	})
}

// Stop ends the following of the live heap and of sessions; the limit
// stays as it was.
func (b *Budget) Stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
}

// afterGC follows the live heap; false once stopped.
func (b *Budget) afterGC() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return false
	}
	metrics.Read(b.sample)
	if v := b.sample[0].Value; v.Kind() == metrics.KindUint64 {
		b.live = int64(min(v.Uint64(), math.MaxInt64/2))
		b.setLocked(true)
	}
	return true
}

// SessionOpened counts a new session.
func (b *Budget) SessionOpened() { b.apply(1) }

// SessionClosed counts a session that ended.
func (b *Budget) SessionClosed() { b.apply(-1) }

// Limit is the limit for n open sessions and the live heap.
func (b *Budget) Limit(n, live int64) int64 {
	return max(b.sessionLimit(n), live+live/2+headroom)
}

func (b *Budget) sessionLimit(n int64) int64 {
	n = (max(n, 0) + step - 1) / step * step
	if b.perSession > 0 && n > (math.MaxInt64-b.base)/b.perSession {
		return math.MaxInt64
	}
	return b.base + n*b.perSession
}

func (b *Budget) apply(delta int64) {
	if b == nil || b.off {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.sessions += delta
	b.setLocked(false)
}

// setLocked sets the limit for the sessions and the live heap. Between
// collections it only raises it: a lower limit set then, while the heap
// holds the garbage of the cycle, would start a collection at once. It
// comes down after a collection, and only once the sessions are a whole
// step fewer than it allows for, or none: a count going to and fro across
// a step made the limit saw up and down, and the runtime collect a fifth
// more often than under a fixed limit.
func (b *Budget) setLocked(afterGC bool) {
	lim := b.Limit(b.sessions, b.live)
	if lim < b.set {
		if !afterGC {
			return
		}
		if b.sessions > 0 {
			lim = min(b.set, b.Limit(b.sessions+step, b.live))
		}
	}
	if lim != b.set {
		b.set = lim
		debug.SetMemoryLimit(lim)
	}
}
