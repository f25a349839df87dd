package deliver

import (
	"container/heap"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// waitItem is a message waiting for its next attempt.
type waitItem struct {
	id   string
	next time.Time
	// untried: it waited for a paced destination without an attempt.
	// Due at the same moment as messages that were tried, it goes first:
	// a message whose every try gets the destination paced again must
	// not keep the others waiting for ever.
	untried bool
}

type waitHeap []waitItem

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].next.Equal(h[j].next) {
		return h[i].untried && !h[j].untried
	}
	return h[i].next.Before(h[j].next)
}
func (h waitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)   { *h = append(*h, x.(waitItem)) }
func (h *waitHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// dispatcher is the scheduling state, owned by the goroutine in Run or
// RunOnce.
type dispatcher struct {
	// ready are the due messages, queued per destination (queues.go).
	ready   *readyQueues
	waiting waitHeap
	// known are the Ready messages seen: when each is due and the
	// the destination whose queue it waits in.
	known map[string]queued
	// dsts are the destinations of known messages, by key; known
	// messages point to them, so that a key is held once.
	dsts     map[string]*route.Destination
	inflight map[string]bool
	// relist are messages a listing found Ready while under way: an
	// administrator may have put them back (a failed one renamed to Ready,
	// E-MailRelay's unfail-all) before their outcome came in, which
	// would otherwise forget them until the next listing.
	relist map[string]bool
	// busy are messages that found their destination at its limit; they
	// go back in line as soon as some delivery ends.
	busy map[string]bool
	// working counts the batches under way, one per busy worker.
	working int
	// first is true during Run's first listing.
	first bool
	// once: RunOnce's, which tries every message once and keeps no
	// next-attempt time per message, so that a large spool costs only
	// its queues.
	once bool
	// flushes are Flush calls waiting for their messages.
	flushes []*flushing
	// stopped: a client filter ended the forwarding run; nothing more
	// starts until the next kick or flush. probe: a run with a client
	// filter has begun and only one batch goes until a message's outcome
	// says whether the filter ends the run, as E-MailRelay's forwarding,
	// one message after the other, would have it.
	stopped, probe bool
}

// queued is what the dispatcher keeps per known message: when it is due
// (Unix nanoseconds, 0 for now) and where it goes (nil if not known yet).
type queued struct {
	next int64
	dst  *route.Destination
}

func newDispatcher() *dispatcher {
	return &dispatcher{ready: newReadyQueues(), known: map[string]queued{}, dsts: map[string]*route.Destination{},
		inflight: map[string]bool{}, relist: map[string]bool{}, busy: map[string]bool{}}
}

// job is a batch of one destination's messages for one worker.
type job struct {
	key string
	ids []string
	// halt: after a failure to connect, hand the rest back untried
	// (RunOnce with a single upstream stops there).
	halt bool
}

// flushing is one Flush call: the messages it waits for and what became of
// those done.
type flushing struct {
	ids   map[string]bool
	again map[string]bool // under way when Flush came
	sum   Summary
	reply chan<- Summary
}

// stop ends the forwarding run at a client filter's request: nothing more
// starts until the next kick, and the Flush calls count the messages not
// under way as untried.
func (d *dispatcher) stop() {
	d.stopped = true
	for _, f := range d.flushes {
		for id := range f.ids {
			if !d.inflight[id] {
				delete(f.ids, id)
				f.sum.Untried++
			}
		}
	}
	d.endFlushes()
}

// endFlushes answers the Flush calls whose messages are all done.
func (d *dispatcher) endFlushes() {
	keep := d.flushes[:0]
	for _, f := range d.flushes {
		if len(f.ids) == 0 {
			f.reply <- f.sum
		} else {
			keep = append(keep, f)
		}
	}
	d.flushes = keep
}

// count adds one attempt's outcome to a summary.
func (sum *Summary) count(o outcome) {
	switch {
	case o.skipped && o.stuck:
		sum.Untried++
	case o.skipped:
	case o.paused && o.sent+o.deferred+o.failed == 0:
		sum.Untried++
	default:
		sum.Messages++
		if o.reply != "" {
			sum.LastReply = o.reply
		}
		switch {
		case o.deferred > 0 || o.paused || o.waiting:
			sum.Deferred++
		case o.failed > 0:
			sum.Failed++
		default:
			sum.Sent++
		}
	}
}

// Flush makes the running scheduler (Run) try every Ready message now,
// whatever its back-off says, and returns when each has had its attempt:
// the admin's flush. Paced destinations stay paced; their messages count
// as untried. If ctx ends first, Flush returns its error and the attempts
// go on.
func (s *Scheduler) Flush(ctx context.Context) (Summary, error) {
	reply := make(chan Summary, 1)
	select {
	case s.flushes <- reply:
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	}
	select {
	case sum := <-reply:
		return sum, nil
	case <-ctx.Done():
		return Summary{}, ctx.Err()
	}
}

// note makes a Ready message known: due now (ignoreBackoff, or its time has
// come) in its destination's queue, or waiting for its next attempt.
func (s *Scheduler) note(d *dispatcher, id string, env *spool.Envelope, ignoreBackoff bool) {
	dst := d.intern(s.destinationOf(env))
	if d.once {
		d.ready.push(id, *dst)
		return
	}
	if ignoreBackoff || !env.NextAttempt.After(s.clock.Now()) {
		d.known[id] = queued{dst: dst}
		d.ready.push(id, *dst)
		return
	}
	d.known[id] = queued{next: env.NextAttempt.UnixNano(), dst: dst}
	heap.Push(&d.waiting, waitItem{id: id, next: env.NextAttempt})
}

// intern makes dst its key's destination, for every message that goes
// there (the latest route wins: tables may have been reloaded). The key is
// copied: one cut from a recipient address would keep that envelope's
// whole text alive.
func (d *dispatcher) intern(dst route.Destination) *route.Destination {
	if p, ok := d.dsts[dst.Key]; ok {
		dst.Key = p.Key
		*p = dst
		return p
	}
	dst.Key = strings.Clone(dst.Key)
	p := &dst
	d.dsts[dst.Key] = p
	return p
}

// requeue puts a message back in its destination's queue, due now: the
// one it is known to go to, else key's.
func (d *dispatcher) requeue(id, key string) {
	dst := d.known[id].dst
	if dst == nil {
		if dst = d.dsts[key]; dst == nil {
			dst = d.intern(route.Destination{Key: key})
		}
	}
	d.known[id] = queued{dst: dst}
	d.ready.push(id, *dst)
}

// scan lists the spool and queues Ready messages not yet known. ignoreBackoff
// makes every Ready message due now (--as-client, admin flush). With force,
// what the dispatcher knew is forgotten and read again.
func (s *Scheduler) scan(d *dispatcher, force, ignoreBackoff bool) {
	arrivals, lost := s.takeArrivals() // the listing finds them too
	var later map[string]bool
	if d.first && !lost && len(arrivals) > 0 {
		// The first listing is of what was queued at start; messages
		// accepted since wait for their kick.
		later = map[string]bool{}
		for _, a := range arrivals {
			later[a.id] = true
		}
		s.mu.Lock()
		s.arrivals = append(arrivals, s.arrivals...)
		s.mu.Unlock()
	}
	ents, err := s.opts.Spool.List()
	if err != nil {
		s.log.Error("spool scan failed", "err", err)
		return
	}
	if force {
		d.known = map[string]queued{}
		d.waiting = d.waiting[:0]
		d.ready.clear()
	}
	// present are the Ready messages listed, to forget those that have
	// gone; after a forced scan only those are known anyway.
	var present map[string]bool
	if !force {
		present = map[string]bool{}
	}
	var unknown []spool.Entry
	for _, e := range ents {
		if e.State != spool.Ready {
			continue
		}
		if present != nil {
			present[e.ID] = true
		}
		if d.inflight[e.ID] {
			d.relist[e.ID] = true
			continue
		}
		if later[e.ID] {
			continue
		}
		if _, ok := d.known[e.ID]; ok {
			continue
		}
		unknown = append(unknown, e)
	}
	broken := map[string]bool{}
	s.readListed(unknown, func(id string, env *spool.Envelope, err error) {
		switch {
		case env != nil:
			s.note(d, id, env, ignoreBackoff)
		case err == nil || errors.Is(err, spool.ErrNotFound): // gone meanwhile
		case !s.broken[id]:
			// Never claimed, so nothing else tells of it.
			s.log.Warn("envelope unreadable: not delivered until a restart quarantines it, or queue delete removes it", "id", id, "err", err)
			fallthrough
		default:
			broken[id] = true
		}
	})
	s.broken = broken
	// Forget messages that left Ready behind our back (deleted, held),
	// and the destinations no message goes to any more.
	used := map[*route.Destination]bool{}
	for id, q := range d.known {
		if present != nil && !present[id] && !d.inflight[id] {
			delete(d.known, id)
			continue
		}
		used[q.dst] = true
	}
	for k, p := range d.dsts {
		if !used[p] && d.ready.queues[k] == nil {
			delete(d.dsts, k)
		}
	}
}

// readListed reads the envelopes of listed Ready messages and calls each,
// in the listing's order, with each one's envelope, or the error reading
// it (renamed meanwhile: ErrNotFound; broken). A large spool (a restart with 100,000
// messages queued: about 2 s here) is read by a few goroutines at once, a
// chunk at a time, so that the parsed envelopes held at once stay few.
func (s *Scheduler) readListed(ents []spool.Entry, each func(id string, env *spool.Envelope, err error)) {
	const chunk, readers = 512, 4
	envs := make([]*spool.Envelope, min(len(ents), chunk))
	errs := make([]error, len(envs))
	for len(ents) > 0 {
		part := ents[:min(len(ents), chunk)]
		ents = ents[len(part):]
		var wg sync.WaitGroup
		n := min(readers, (len(part)+63)/64)
		for r := range n {
			wg.Go(func() {
				for i := r; i < len(part); i += n {
					// Read in the state listed: no looking for it under
					// other names, since only a Ready envelope is queued.
					envs[i], errs[i] = s.opts.Spool.ReadListed(part[i])
				}
			})
		}
		wg.Wait()
		for i, e := range part {
			each(e.ID, envs[i], errs[i])
			envs[i], errs[i] = nil, nil
		}
	}
}

// farAhead reports a next attempt later than any wait set from now could
// be (twice the back-off, a pace's longest suspension, the sending quota's
// window, and an hour more): the wall clock was stepped back since it was
// set (NTP fixing a clock that ran ahead, a clock without a battery).
// Waiting for it would hold the message back by the whole step, days or a
// year; it is due now instead. A step shorter than the horizon is waited
// out. (The heap's earliest is checked: a step moves all alike.)
func (s *Scheduler) farAhead(next, now time.Time) bool {
	p := s.opts.Pace
	horizon := max(2*s.opts.MaxBackoff, p.MaxSuspend, p.QuotaWindow) + time.Hour
	return s.opts.MaxBackoff > 0 && next.After(now.Add(horizon))
}

// promote moves waiting messages whose time has come to their queues, and
// returns when the next one will be due (zero if none waits).
func (s *Scheduler) promote(d *dispatcher) time.Time {
	now := s.clock.Now()
	for len(d.waiting) > 0 && (!d.waiting[0].next.After(now) || s.farAhead(d.waiting[0].next, now)) {
		it := heap.Pop(&d.waiting).(waitItem)
		if q, ok := d.known[it.id]; ok && q.next == it.next.UnixNano() && !d.inflight[it.id] {
			d.requeue(it.id, "")
		}
	}
	if len(d.waiting) > 0 {
		return d.waiting[0].next
	}
	return time.Time{}
}

// dispatch hands batches to free workers while there are any and a queue
// below its limit has messages. A worker counted free is waiting on work,
// so the send does not block for long.
func (s *Scheduler) dispatch(d *dispatcher, work chan<- job, halt bool) {
	for d.working < s.opts.Connections && !(d.probe && d.working > 0) {
		free, dests := s.opts.Connections-d.working, len(d.ready.ring)
		key, ids, ok := d.ready.take(s.queueLimit, func(queued, slots int) int {
			return s.batchSize(queued, slots, free, dests)
		})
		if !ok {
			return
		}
		for _, id := range ids {
			d.inflight[id] = true
		}
		d.working++
		work <- job{key: key, ids: ids, halt: halt}
	}
}

// ended books the end of a worker's batch: its destination may take
// another, and the messages it did not get to go back in line.
func (d *dispatcher) ended(o outcome) {
	d.working--
	for _, id := range o.rest {
		delete(d.inflight, id)
		delete(d.relist, id)
		if _, ok := d.known[id]; !ok {
			d.known[id] = queued{dst: d.dsts[o.key]}
		}
	}
	d.ready.finished(o.key, o.rest)
}

// startWorkers starts Options.Connections workers, which return when work
// is closed; wg says when they all have.
func (s *Scheduler) startWorkers(ctx context.Context, stop <-chan struct{}) (chan<- job, chan outcome, *sync.WaitGroup) {
	work := make(chan job)
	// Room for every worker's outcome: a worker hands one over and goes
	// on to its next message without waiting for the dispatcher to take
	// it (a wake-up of the dispatcher for each message otherwise).
	results := make(chan outcome, s.opts.Connections)
	wg := &sync.WaitGroup{}
	for range s.opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx, stop, work, results)
		}()
	}
	return work, results, wg
}

// Run forwards due messages until ctx ends, then lets deliveries under way
// finish within Options.Grace and releases every claim.
func (s *Scheduler) Run(ctx context.Context) error {
	hard, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	// A Hurry before this Run began (a second signal before its goroutine
	// ran) holds; the mark is cleared when Run ends, for a later Run.
	defer func() {
		s.mu.Lock()
		s.hurried, s.cutGrace = false, nil
		s.mu.Unlock()
	}()
	stopGrace := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.hurried {
			cancel()
			return
		}
		s.cutGrace = cancel
		time.AfterFunc(s.opts.Grace, cancel)
	})
	defer stopGrace()

	work, results, wg := s.startWorkers(hard, ctx.Done())
	reapDone := make(chan struct{})
	go s.reaper(reapDone)
	defer close(reapDone)

	d := newDispatcher()
	s.savePaces() // none yet: forget a previous run's
	defer s.removePaces()
	s.opts.Spool.Watch(s) // again, after an earlier Run's Unwatch
	defer s.opts.Spool.Unwatch(s)
	d.first = true
	s.scan(d, false, false)
	d.first = false
	d.probe = filter.MayStop(s.opts.ClientFilter)
	for {
		wake := s.promote(d)
		if !d.stopped {
			s.dispatch(d, work, false)
		}
		var timer <-chan time.Time
		if !wake.IsZero() {
			timer = s.clock.After(max(wake.Sub(s.clock.Now()), time.Millisecond))
		}
		select {
		case o := <-results:
			if o.end {
				d.ended(o)
			} else {
				s.settle(d, o)
				d.probe = false
				if o.stop {
					d.stop()
				}
			}
		case <-s.kick:
			d.stopped, d.probe = false, filter.MayStop(s.opts.ClientFilter)
			k, kicked, recovered := s.takeKick()
			if recovered {
				// What recovery released; what arrived meanwhile
				// still waits for its own trigger, as at start.
				d.first = true
				s.scan(d, false, false)
				d.first = false
			}
			switch {
			case !kicked:
			case k == kickForce:
				s.clearDead()
				s.scan(d, true, false)
			case k == kickScan:
				s.scan(d, false, false)
			default:
				s.arrived(d)
			}
		case reply := <-s.flushes:
			d.stopped, d.probe = false, filter.MayStop(s.opts.ClientFilter)
			s.clearDead()
			s.scan(d, true, true)
			f := &flushing{ids: map[string]bool{}, again: map[string]bool{}, reply: reply}
			d.ready.each(func(id string) { f.ids[id] = true })
			for id := range d.inflight {
				f.ids[id] = true
				f.again[id] = true
			}
			d.flushes = append(d.flushes, f)
			d.endFlushes()
		case <-timer:
		case <-ctx.Done():
			close(work)
			go func() { wg.Wait(); close(results) }()
			for o := range results {
				if !o.end {
					s.settle(d, o)
				}
			}
			for _, f := range d.flushes {
				f.sum.Untried += len(f.ids)
				f.reply <- f.sum
			}
			return nil
		}
	}
}

func (s *Scheduler) settle(d *dispatcher, o outcome) {
	delete(d.inflight, o.id)
	again := false
	for _, f := range d.flushes {
		if !f.ids[o.id] || o.waiting {
			continue
		}
		if f.again[o.id] {
			// Under way when the flush came: what counts is the
			// attempt after this one, if the message is still ready.
			delete(f.again, o.id)
			if !o.skipped && !o.next.IsZero() {
				again = true
				continue
			}
		}
		delete(f.ids, o.id)
		f.sum.count(o)
	}
	d.endFlushes()
	dst := d.known[o.id].dst
	if o.rerouted {
		// Its first pending leg may go elsewhere now.
		dst = d.intern(o.dst)
	} else if dst == nil {
		dst = d.dsts[o.key] // forgotten by a forced scan while under way
	}
	if again {
		defer func() { d.requeue(o.id, o.key) }()
	}
	if !o.waiting && !o.skipped && len(d.busy) > 0 {
		// A delivery ended: a slot, or a parked session, may be free for
		// the messages that found their destination busy.
		for id := range d.busy {
			if !d.inflight[id] {
				d.requeue(id, "")
			}
		}
		clear(d.busy)
	}
	if o.waiting {
		d.busy[o.id] = true
	}
	if o.skipped || o.next.IsZero() {
		delete(d.known, o.id)
		if d.relist[o.id] && !o.skipped {
			// Done with here, but listed Ready meanwhile: if it is
			// Ready now, it was put back, and is due. (A message
			// skipped was never claimed: Ready all along, and busy
			// elsewhere; the next listing finds it, as before,
			// rather than a claim failing over and over.)
			if env, st, err := s.opts.Spool.Read(o.id); err == nil && st == spool.Ready {
				s.note(d, o.id, env, false)
			}
		}
		delete(d.relist, o.id)
		return
	}
	delete(d.relist, o.id)
	d.known[o.id] = queued{next: o.next.UnixNano(), dst: dst}
	heap.Push(&d.waiting, waitItem{id: o.id, next: o.next, untried: o.paused && o.sent+o.deferred+o.failed == 0})
}

// The hand-off from intake: the spool tells the scheduler of each message
// this process commits (spool.Watcher), and a kick from a client's
// disconnection (ArrivalKick) queues those messages without listing the
// spool directory. Listings stay for start-up, poll ticks, forced kicks
// and filters that ask for a rescan, which find what other processes add.

// maxArrivals bounds the hand-off list; beyond it the next kick lists the
// spool instead.
const maxArrivals = 1024

// arrival is a message committed by this process, with its envelope when
// the spool had it at hand.
type arrival struct {
	id       string
	envelope []byte
}

// kickKind is what a kick asks for; a stronger kick absorbs a weaker one.
type kickKind int

const (
	kickArrivals kickKind = iota // queue the messages handed off
	kickScan                     // list the spool
	kickForce                    // list the spool, forgetting cached times
)

// kickWith merges k into the pending kick and wakes the dispatcher.
func (s *Scheduler) kickWith(k kickKind) {
	s.mu.Lock()
	if !s.kicked || k > s.pendingKick {
		s.pendingKick = k
	}
	s.kicked = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// takeKick returns the pending kick, whether there is one, and whether
// recovery asked for a listing (KickRecovered), and clears them.
func (s *Scheduler) takeKick() (k kickKind, kicked, recovered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, kicked, recovered = s.pendingKick, s.kicked, s.recovered
	s.kicked, s.pendingKick, s.recovered = false, kickArrivals, false
	return k, kicked, recovered
}

// KickRecovered asks for a listing of the spool after recovery has
// released messages (a dead process's claims): they go now, as what was
// queued at start does, while messages accepted since wait for their own
// trigger (a poll, a disconnect) as they would have without recovery.
// With all (--forward), everything goes, as a forced kick.
func (s *Scheduler) KickRecovered(all bool) {
	if all {
		s.kickWith(kickForce)
		return
	}
	s.mu.Lock()
	s.recovered = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Committed is spool.Watcher: a message this process committed is noted
// for the next kick. It never blocks.
func (s *Scheduler) Committed(id string, envelope []byte) {
	s.mu.Lock()
	if len(s.arrivals) < maxArrivals {
		s.arrivals = append(s.arrivals, arrival{id, envelope})
	} else {
		s.arrivalsLost = true
	}
	s.mu.Unlock()
}

// takeArrivals returns the messages handed off since the last call, and
// whether some were not kept.
func (s *Scheduler) takeArrivals() ([]arrival, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, lost := s.arrivals, s.arrivalsLost
	s.arrivals, s.arrivalsLost = nil, false
	return a, lost
}

// arrived queues the messages handed off since the last kick, reading an
// envelope only when the spool did not pass it on.
func (s *Scheduler) arrived(d *dispatcher) {
	as, lost := s.takeArrivals()
	if lost {
		s.scan(d, false, false)
		return
	}
	for _, a := range as {
		if _, ok := d.known[a.id]; ok || d.inflight[a.id] {
			continue
		}
		var env *spool.Envelope
		var err error
		if a.envelope != nil {
			env, err = spool.UnmarshalBytes(a.envelope)
		} else {
			var st spool.State
			env, st, err = s.opts.Spool.Read(a.id)
			if err == nil && st != spool.Ready {
				continue
			}
		}
		if err != nil {
			continue // gone meanwhile, or broken: a scan or claim will tell
		}
		s.note(d, a.id, env, false)
	}
}

// ArrivalKick is a Kicker for a client's disconnection: it forwards what
// this process committed since the last kick without listing the spool. A
// forced kick is an ordinary one.
type ArrivalKick struct{ S *Scheduler }

// Kick queues the messages handed off, or with force rescans the spool.
func (k ArrivalKick) Kick(force bool) {
	if force {
		k.S.Kick(true)
		return
	}
	k.S.kickWith(kickArrivals)
}
