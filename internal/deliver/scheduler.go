// Package deliver forwards spooled messages upstream: a dispatcher decides
// which message is due, a bounded pool of workers carries them over a few
// long-lived SMTP sessions, and every recipient's result is written to the
// envelope before the next state is taken.
//
// A temporary failure (a 4xx reply, a refused or broken connection, a
// timeout) leaves the message Ready with a next-attempt time from an
// exponential back-off; a 5xx reply fails that recipient for good. When
// every recipient is done the message is deleted (all sent) or moved to
// Failed (some refused). The scheduler never holds a message's claim across
// a wait: between attempts a message is only a file, so a crash at any
// moment loses nothing.
//
// The dispatcher goroutine owns all scheduling state; workers only receive
// ids and send back outcomes. Time comes from an injected Clock, so back-off
// schedules can be tested without sleeping.
package deliver

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Options configure a Scheduler.
type Options struct {
	Spool *spool.Spool
	// Upstream is the smarthost, "host:port".
	Upstream string
	// Dial opens sessions with Upstream and the content filter.
	Dial Dialer
	// Connections is the number of workers, each with at most one session.
	Connections int
	// MessagesPerConnection bounds what one session carries.
	MessagesPerConnection int
	// Router, if set, routes each recipient (transports, MX); without it
	// everything goes to Upstream.
	Router Router
	// DestinationConcurrency bounds sessions per destination unless its
	// route says otherwise (Postfix: default_destination_concurrency_limit,
	// 20); RecipientLimit bounds recipients per transaction
	// (default_destination_recipient_limit, 50).
	DestinationConcurrency int
	RecipientLimit         int
	// MinBackoff and MaxBackoff are Postfix's minimal_backoff_time and
	// maximal_backoff_time: the wait after a message's first temporary
	// failure, doubled per attempt up to the maximum.
	MinBackoff, MaxBackoff time.Duration
	// Pace is how the scheduler slows down for a destination that says
	// the relay sends too fast; the zero value takes Postfix-like
	// defaults (see PaceOptions).
	Pace PaceOptions
	// Grace is how long deliveries under way may go on after Run's
	// context ends.
	Grace time.Duration
	Clock Clock
	Log   *slog.Logger
	// MailLog gets a line per recipient per attempt.
	MailLog *maillog.Logger
	// Notices, if set, queues delivery status notifications: a failure
	// notice for recipients that failed for good in this attempt, a delay
	// warning for those still waiting after DelayWarning, and a double
	// bounce for a notice that could not be delivered. It runs while the
	// message is claimed, before its new state is recorded; an error is
	// logged and the message goes on (a notice is never worth a loss).
	// Without it no notice is sent and an undeliverable notice is dropped.
	Notices Notifier
	// MaxLifetime is Postfix's maximal_queue_lifetime: a recipient still
	// deferred this long after arrival fails. BounceLifetime is
	// bounce_queue_lifetime, for messages from the null sender.
	MaxLifetime, BounceLifetime time.Duration
	// DelayWarning, if positive, is Postfix's delay_warning_time.
	DelayWarning time.Duration
	// ContentFilter, if set, is Postfix's after-queue content filter
	// ("host:port"): every message not yet filtered goes there first,
	// with its original client in an X-Relaykeeper-Original-Client
	// header, and comes back through the reinject listener.
	ContentFilter string
	// ClientFilter, if set, runs on each message before it is forwarded
	// (--client-filter).
	ClientFilter filter.Filter
	// Senders, if set, rewrites the envelope sender of each message as it
	// goes upstream (SRS); not towards the content filter.
	Senders SenderRewriter
	// Refusals, if set, sees every recipient's refusal (the enforcer)
	// while the message is claimed, and says what to do about it.
	Refusals Refusals
	// Verdicts reads what a refusal means for the queue (pace, alert);
	// nil means StockVerdicts.
	Verdicts Verdicts
	// Progress, if set, hears how far RunOnce has got (a progress bar for
	// --as-client).
	Progress Progress
}

// Progress is told, after each message RunOnce finishes with, how many of
// how many are done.
type Progress interface {
	Step(done, total int)
}

// SenderRewriter gives the envelope sender to use upstream for a
// message's own (internal/srs.Rewriter: an SRS address for a domain not the
// relay's).
type SenderRewriter interface {
	Forward(from string) string
}

// Effect is what Refusals wants done with a refused recipient.
type Effect struct {
	// Hold keeps the whole message held instead of retrying it.
	Hold bool
	// Settle, if set, overrides the recipient's status: spool.Sent (it
	// was delivered another way, encapsulated) or spool.Bounced (a
	// temporary refusal made permanent), with Reply as its reply.
	Settle spool.RcptStatus
	Reply  string
}

// Result is one recipient's attempt, as Refusals and Verdicts see it.
type Result struct {
	Env   *spool.Envelope
	Rcpt  spool.Recipient
	Relay string
	// Reply is the upstream's reply; Code 0 when there was none.
	Reply reply.Reply
	// Stage is what the reply answered: "mail", "rcpt", "data".
	Stage string
}

// The default back-off: Postfix's names, minimal_backoff_time and
// maximal_backoff_time, but a first retry within a minute rather than
// Postfix's 300s, so that a one-off glitch upstream costs a minute (see
// docs/queue.md).
const (
	DefaultMinBackoff = 60 * time.Second
	DefaultMaxBackoff = 4000 * time.Second
)

// Scheduler forwards the spool's Ready messages.
type Scheduler struct {
	opts  Options
	clock Clock
	log   *slog.Logger
	kick  chan bool // true: forget cached next-attempt times
	// flushes are Flush's requests to the running dispatcher.
	flushes chan chan<- Summary

	mu        sync.Mutex // guards the fields below
	rng       *rand.Rand
	active    map[string]int        // sessions open per destination
	dead      map[string]deadDest   // destinations that could not be reached
	nextStart map[string]time.Time  // rate delay: earliest next delivery
	idle      map[string][]idleConn // parked sessions, per destination
	idleCount int                   // sessions in idle
	windows   map[string]int        // slow-start windows, per destination
	paces     pacing                // paced destinations and recipients
	// parkLimit is how long RunOnce waits for busy destinations to free
	// a slot when nothing else is left to do.
	parkLimit time.Duration
}

// New returns a Scheduler; Run or RunOnce drive it.
func New(opts Options) *Scheduler {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Connections < 1 {
		opts.Connections = 1
	}
	if opts.MessagesPerConnection < 1 {
		opts.MessagesPerConnection = 100
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	opts.Pace.defaults()
	if opts.DestinationConcurrency <= 0 {
		opts.DestinationConcurrency = 20
	}
	if opts.RecipientLimit <= 0 {
		opts.RecipientLimit = 50
	}
	return &Scheduler{
		opts: opts, clock: opts.Clock, log: opts.Log,
		kick:      make(chan bool, 1),
		flushes:   make(chan chan<- Summary),
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
		active:    map[string]int{},
		dead:      map[string]deadDest{},
		nextStart: map[string]time.Time{},
		idle:      map[string][]idleConn{},
		windows:   map[string]int{},
		paces:     pacing{},
		parkLimit: 5 * time.Second,
	}
}

// Kick asks for a scan of the spool and delivery of everything due, as a
// poll tick, a client's disconnect or the admin's "forward" do. It never
// blocks; kicks that come while one is pending are merged. With force, cached
// next-attempt times are forgotten, so that envelopes changed by other
// processes (a `queue retry`) are read again.
func (s *Scheduler) Kick(force bool) {
	select {
	case s.kick <- force:
	default:
		if force {
			// A plain kick is pending; make it a forced one.
			select {
			case <-s.kick:
			default:
			}
			select {
			case s.kick <- true:
			default:
			}
		}
	}
}

// waitItem is a message waiting for its next attempt.
type waitItem struct {
	id   string
	next time.Time
}

type waitHeap []waitItem

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitItem)) }
func (h *waitHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// dispatcher is the scheduling state, owned by the goroutine in Run or
// RunOnce.
type dispatcher struct {
	due      []string
	waiting  waitHeap
	known    map[string]time.Time // id -> next attempt, for Ready messages seen
	inflight map[string]bool
	// busy are messages that found their destination at its limit; they
	// go back in line as soon as some delivery ends.
	busy map[string]bool
	// flushes are Flush calls waiting for their messages.
	flushes []*flushing
}

// flushing is one Flush call: the messages it waits for and what became of
// those done.
type flushing struct {
	ids   map[string]bool
	again map[string]bool // under way when Flush came
	sum   Summary
	reply chan<- Summary
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
	case o.skipped:
	case o.paused && o.sent+o.deferred+o.failed == 0:
		sum.Untried++
	default:
		sum.Messages++
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

// scan lists the spool and queues Ready messages not yet known. ignoreBackoff
// makes every Ready message due now (--as-client, admin flush).
func (s *Scheduler) scan(d *dispatcher, force, ignoreBackoff bool) {
	ents, err := s.opts.Spool.List()
	if err != nil {
		s.log.Error("spool scan failed", "err", err)
		return
	}
	if force {
		d.known = map[string]time.Time{}
		d.waiting = d.waiting[:0]
		d.due = d.due[:0]
	}
	now := s.clock.Now()
	present := map[string]bool{}
	for _, e := range ents {
		if e.State != spool.Ready {
			continue
		}
		present[e.ID] = true
		if d.inflight[e.ID] {
			continue
		}
		if _, ok := d.known[e.ID]; ok {
			continue
		}
		next := time.Time{}
		if !ignoreBackoff {
			env, _, err := s.opts.Spool.Read(e.ID)
			if err != nil {
				continue // renamed meanwhile, or broken: a claim will tell
			}
			next = env.NextAttempt
		}
		d.known[e.ID] = next
		if next.After(now) {
			heap.Push(&d.waiting, waitItem{e.ID, next})
		} else {
			d.due = append(d.due, e.ID)
		}
	}
	// Forget messages that left Ready behind our back (deleted, held).
	for id := range d.known {
		if !present[id] && !d.inflight[id] {
			delete(d.known, id)
		}
	}
}

// promote moves waiting messages whose time has come to due, and returns
// when the next one will be due (zero if none waits).
func (s *Scheduler) promote(d *dispatcher) time.Time {
	now := s.clock.Now()
	for len(d.waiting) > 0 && !d.waiting[0].next.After(now) {
		it := heap.Pop(&d.waiting).(waitItem)
		if next, ok := d.known[it.id]; ok && next.Equal(it.next) && !d.inflight[it.id] {
			d.due = append(d.due, it.id)
		}
	}
	if len(d.waiting) > 0 {
		return d.waiting[0].next
	}
	return time.Time{}
}

// Run forwards due messages until ctx ends, then lets deliveries under way
// finish within Options.Grace and releases every claim.
func (s *Scheduler) Run(ctx context.Context) error {
	hard, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(s.opts.Grace, cancel)
	})
	defer stopGrace()

	work := make(chan string)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range s.opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(hard, work, results)
		}()
	}
	reapDone := make(chan struct{})
	go s.reaper(reapDone)
	defer close(reapDone)

	d := &dispatcher{known: map[string]time.Time{}, inflight: map[string]bool{}, busy: map[string]bool{}}
	s.savePaces() // none yet: forget a previous run's
	defer s.removePaces()
	s.scan(d, false, false)
	for {
		wake := s.promote(d)
		var out chan string
		var next string
		if len(d.due) > 0 {
			out, next = work, d.due[0]
		}
		var timer <-chan time.Time
		if !wake.IsZero() {
			timer = s.clock.After(max(wake.Sub(s.clock.Now()), time.Millisecond))
		}
		select {
		case out <- next:
			d.due = d.due[1:]
			d.inflight[next] = true
		case o := <-results:
			s.settle(d, o)
		case force := <-s.kick:
			if force {
				s.clearDead()
			}
			s.scan(d, force, false)
		case reply := <-s.flushes:
			s.clearDead()
			s.scan(d, true, true)
			f := &flushing{ids: map[string]bool{}, again: map[string]bool{}, reply: reply}
			for _, id := range d.due {
				f.ids[id] = true
			}
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
				s.settle(d, o)
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
	if again {
		defer func() {
			d.known[o.id] = time.Time{}
			d.due = append(d.due, o.id)
		}()
	}
	if !o.waiting && !o.skipped && len(d.busy) > 0 {
		// A delivery ended: a slot, or a parked session, may be free for
		// the messages that found their destination busy.
		for id := range d.busy {
			if !d.inflight[id] {
				d.known[id] = time.Time{}
				d.due = append(d.due, id)
			}
		}
		clear(d.busy)
	}
	if o.waiting {
		d.busy[o.id] = true
	}
	if o.skipped || o.next.IsZero() {
		delete(d.known, o.id)
		return
	}
	d.known[o.id] = o.next
	heap.Push(&d.waiting, waitItem{o.id, o.next})
}

// worker carries messages from work over a session it keeps open while
// messages to the same destination follow, and closes it when no work has
// come for a moment or it has carried enough.
func (s *Scheduler) worker(ctx context.Context, work <-chan string, results chan<- outcome) {
	wc := &workerConn{s: s}
	defer wc.close()
	for {
		id, ok := <-work
		if !ok {
			return
		}
		o := s.deliverOne(ctx, wc, id)
		// The session goes to the pool, where the next message for its
		// destination finds it whichever worker carries that message.
		wc.park()
		results <- o
	}
}

// reaper closes parked sessions that have been idle for a while, until
// done is closed; then it closes them all.
func (s *Scheduler) reaper(done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.reapIdle(2 * time.Second)
		case <-done:
			s.reapIdle(0)
			return
		}
	}
}

// deliverOne claims id and makes one attempt at it.
func (s *Scheduler) deliverOne(ctx context.Context, wc *workerConn, id string) outcome {
	c, err := s.opts.Spool.Claim(id)
	if err != nil {
		if !errors.Is(err, spool.ErrBusy) && !errors.Is(err, spool.ErrNotFound) {
			s.log.Error("claim failed", "id", id, "err", err)
		}
		return outcome{id: id, skipped: true}
	}
	if len(c.Env.Pending()) == 0 && c.Env.Count(spool.Bounced) > 0 {
		// A Ready message whose every remaining recipient failed can only
		// come from an administrator who renamed it back from Failed
		// (E-MailRelay's unfail-all, `queue retry`): try them again.
		for i := range c.Env.Recipients {
			if r := &c.Env.Recipients[i]; r.Status == spool.Bounced {
				r.Status = spool.Pending
			}
		}
	}
	if f := s.opts.ClientFilter; f != nil {
		if o, done := s.clientFilter(ctx, f, c); done {
			return o
		}
	}
	return s.attempt(ctx, wc, c)
}

// clientFilter runs the client filter on a claimed message. done means the
// filter settled the message (abandoned, refused, or failed) and no attempt
// is to be made.
func (s *Scheduler) clientFilter(ctx context.Context, f filter.Filter, c *spool.Claim) (outcome, bool) {
	res := f.Run(ctx, s.opts.Spool.ContentPath(c.ID()), c.EnvelopePath())
	if err := c.Relock(); err != nil {
		s.log.Error("after the client filter the message cannot be read; left for the next run", "id", c.ID(), "err", err)
		c.Unlock()
		return outcome{id: c.ID(), skipped: true}, true
	}
	switch res.Outcome {
	case filter.Abandon:
		// E-MailRelay: skip this message and leave it as it is.
		c.Unlock()
		return outcome{id: c.ID(), skipped: true}, true
	case filter.Reject, filter.TempFail:
		c.Env.Attempts++
		reply := fmt.Sprintf("%d %s %s", res.Code, res.Enhanced, res.Text)
		now := s.clock.Now()
		out := outcome{id: c.ID()}
		for i := range c.Env.Recipients {
			r := &c.Env.Recipients[i]
			if r.Done() {
				continue
			}
			r.Reply = reply
			if res.Outcome == filter.Reject {
				r.Status = spool.Bounced
				out.failed++
			} else {
				r.Status = spool.Deferred
				out.deferred++
			}
			s.opts.MailLog.Deliver(maillog.Delivery{ID: c.ID(), To: r.Addr, Relay: "filter " + f.String(),
				Result: map[bool]maillog.Result{true: maillog.Bounced, false: maillog.Deferred}[res.Outcome == filter.Reject],
				Delay:  now.Sub(c.Env.Arrival), Attempt: c.Env.Attempts, Reply: reply, Client: c.Env.Client})
		}
		c.Env.LastReply = reply
		var err error
		if res.Outcome == filter.Reject {
			c.Env.Reasons = append(c.Env.Reasons, "X-MailRelay-Reason: "+reply, fmt.Sprintf("X-MailRelay-ReasonCode: %d", res.Code))
			err = c.Move(spool.Failed)
		} else {
			c.Env.NextAttempt = now.Add(s.backoff(c.Env.Attempts))
			out.next = c.Env.NextAttempt
			err = c.Move(spool.Ready)
		}
		if err != nil {
			s.log.Error("recording the client filter's result failed", "id", c.ID(), "err", err)
			c.Unlock()
		}
		return out, true
	}
	return outcome{}, false
}

// Summary counts what a RunOnce did.
type Summary struct {
	Messages, Sent, Deferred, Failed int
	// Untried messages were not attempted because the upstream could not
	// be reached.
	Untried int
}

// NotDelivered counts the messages that are still to go.
func (s Summary) NotDelivered() int { return s.Deferred + s.Failed + s.Untried }

// String is the summary on one line: "3 message(s): 2 delivered, ...".
func (s Summary) String() string {
	return fmt.Sprintf("%d message(s): %d delivered, %d deferred, %d failed, %d not tried",
		s.Messages+s.Untried, s.Sent, s.Deferred, s.Failed, s.Untried)
}

// RunOnce forwards every Ready message once, whatever its back-off says,
// and returns when all are done: E-MailRelay's --as-client and the admin's
// flush. After the upstream cannot be reached, the remaining messages are
// left untouched and counted as untried.
func (s *Scheduler) RunOnce(ctx context.Context) (Summary, error) {
	d := &dispatcher{known: map[string]time.Time{}, inflight: map[string]bool{}, busy: map[string]bool{}}
	s.scan(d, true, true)
	sum := Summary{}
	work := make(chan string)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range s.opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx, work, results)
		}()
	}
	reapDone := make(chan struct{})
	go s.reaper(reapDone)
	defer close(reapDone)
	dead := false
	pending := 0
	queue := d.due
	total := len(queue)
	// parked are messages that waited for a busy destination; they go
	// back in line when a delivery finishes and frees its slot.
	var parked []string
	stalled := time.Time{} // since when only parked messages are left
	for len(queue) > 0 || pending > 0 || len(parked) > 0 {
		if len(queue) == 0 && pending == 0 {
			// Only parked messages left: the slots they wait for are
			// held by idle sessions that close within seconds. If they
			// stay held, give up on them: they are counted untried.
			if stalled.IsZero() {
				stalled = time.Now()
			} else if time.Since(stalled) > s.parkLimit {
				queue = append(queue, parked...)
				parked = nil
				break
			}
			time.Sleep(50 * time.Millisecond)
			queue, parked = parked, nil
		}
		var out chan string
		var next string
		if len(queue) > 0 && !dead && ctx.Err() == nil {
			out, next = work, queue[0]
		} else if pending == 0 {
			break
		}
		select {
		case out <- next:
			queue = queue[1:]
			pending++
		case o := <-results:
			pending--
			if o.skipped {
				continue
			}
			if o.paused && o.sent+o.deferred+o.failed == 0 {
				sum.Untried++ // its destination is paced
				continue
			}
			queue = append(queue, parked...)
			parked = nil
			if !o.waiting {
				stalled = time.Time{}
			}
			if o.waiting {
				parked = append(parked, o.id)
				if o.sent == 0 && o.deferred == 0 && o.failed == 0 {
					continue
				}
			}
			sum.Messages++
			switch {
			case o.deferred > 0:
				sum.Deferred++
			case o.failed > 0:
				sum.Failed++
			case o.waiting:
				// Partly delivered; counted when its last part goes.
				sum.Messages--
			default:
				sum.Sent++
			}
			if s.opts.Progress != nil {
				s.opts.Progress.Step(sum.Messages, total)
			}
			// One upstream and it cannot be reached: the rest would
			// only be deferred too (E-MailRelay's --as-client stops).
			dead = dead || (o.connFailed && s.opts.Router == nil)
		}
	}
	sum.Untried += len(queue)
	close(work)
	wg.Wait()
	return sum, ctx.Err()
}
