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
// The dispatcher goroutine owns all scheduling state: due messages wait in
// one ready queue per destination (queues.go), and workers receive batches
// of one destination's ids, carry them over one session, and send back an
// outcome per message. Time comes from an injected Clock, so back-off
// schedules can be tested without sleeping.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
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
	// bounce_queue_lifetime, for messages from the null sender. 0 is no
	// limit; TryOnce (Lifetime(0)) fails a recipient its first attempt
	// defers.
	MaxLifetime, BounceLifetime time.Duration
	// DelayWarning, if positive, is Postfix's delay_warning_time.
	DelayWarning time.Duration
	// ContentFilter, if set, is Postfix's after-queue content filter
	// ("host:port"): every message not yet filtered goes there first,
	// with its original client in an X-Relaykeeper-Original-Client
	// header, and comes back through the reinject listener.
	ContentFilter string
	// LogNames are the transports' log names (log_name, Postfix's
	// syslog_name) by transport name: a delivery through one says so
	// with transport=NAME in the mail log.
	LogNames map[string]string
	// ClientFilter, if set, runs on each message before it is forwarded
	// (--client-filter).
	ClientFilter filter.Filter
	// Senders, if set, rewrites the envelope sender of each message as it
	// goes upstream (SRS); not towards the content filter.
	Senders SenderRewriter
	// Refusals, if set, sees every recipient's refusal (the enforcer)
	// while the message is claimed, and says what to do about it.
	Refusals Refusals
	// Holds, if set, is asked as each message is claimed whether it is to
	// be held instead of sent (the enforcer's messages of a client banned
	// while they were in flight, HoldNow).
	Holds Holds
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
	// ContentPath is the message's content file, for encapsulation.
	ContentPath string
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
	kick  chan struct{} // wakes the dispatcher for pendingKick
	// flushes are Flush's requests to the running dispatcher.
	flushes chan chan<- Summary
	// broken are the Ready messages whose envelopes the last scan could
	// not read, reported once each (dispatch.go); only scans use it.
	broken map[string]bool

	mu          sync.Mutex // guards the fields below
	hurried     bool       // Hurry was called: no grace
	cutGrace    func()     // Run's, once its grace runs: cuts deliveries under way
	kicked      bool       // a kick is pending
	pendingKick kickKind
	recovered   bool // KickRecovered is pending
	// arrivals are the messages this process committed since the last
	// kick (the hand-off, dispatch.go); arrivalsLost says some did not fit.
	arrivals     []arrival
	arrivalsLost bool
	rng          *rand.Rand
	active       map[string]int        // sessions open per destination
	dead         map[string]deadDest   // destinations that could not be reached
	nextStart    map[string]time.Time  // rate delay: earliest next delivery
	idle         map[string][]idleConn // parked sessions, per destination
	idleCount    int                   // sessions in idle
	windows      map[string]int        // slow-start windows, per destination
	paces        pacing                // paced destinations and recipients
	proxyPace    *ProxyPace            // ProxyPace's: sessions to Upstream keep its pause too
	// unrecorded are the attempts counted for messages whose envelope
	// could not be written after an attempt (a full disk): the next
	// attempt counts on from there (countOn), so that the back-off
	// grows as configured and the envelope, once written, has the count.
	unrecorded  map[string]int
	unrecordedN atomic.Int32 // len(unrecorded), read without mu
	// parkLimit is how long RunOnce waits for busy destinations to free
	// a slot when nothing else is left to do.
	parkLimit time.Duration
	// notices counts the notices this scheduler queued, for RunOnce.
	notices atomic.Int64
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
	s := &Scheduler{
		opts: opts, clock: opts.Clock, log: opts.Log,
		kick:      make(chan struct{}, 1),
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
	if opts.Spool != nil {
		// Watching from the start: a message accepted before Run's first
		// listing waits for its trigger (a poll, a disconnect), as one
		// accepted after it does, instead of going with what was queued
		// at start (E-MailRelay forwards at start only with --forward).
		opts.Spool.Watch(s)
	}
	return s
}

// Kick asks for a scan of the spool and delivery of everything due, as a
// poll tick, a client's disconnect or the admin's "forward" do. It never
// blocks; kicks that come while one is pending are merged. With force, cached
// next-attempt times are forgotten, so that envelopes changed by other
// processes (a `queue retry`) are read again.
func (s *Scheduler) Kick(force bool) {
	if force {
		s.kickWith(kickForce)
	} else {
		s.kickWith(kickScan)
	}
}

// Poll kicks the scheduler every interval (--poll) until ctx ends.
func (s *Scheduler) Poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Kick(false)
		case <-ctx.Done():
			return
		}
	}
}

// Hurry ends the grace that Run gives deliveries under way once its
// context ends, or makes it none if that is still to come: an operator's
// second SIGTERM or Ctrl-C. A cut delivery is no attempt; the message is
// tried again after a restart. A nil Scheduler (a proxy's) has nothing.
func (s *Scheduler) Hurry() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.hurried = true
	cut := s.cutGrace
	s.mu.Unlock()
	if cut != nil {
		cut()
	}
}

// worker carries batches of one destination's messages: it keeps its
// session open from one message to the next, and when the batch is done
// gives it to the idle pool, where the next batch for that destination
// finds it whichever worker takes it. After stop is closed it starts no
// more messages and hands the rest of its batch back.
func (s *Scheduler) worker(ctx context.Context, stop <-chan struct{}, work <-chan job, results chan<- outcome) {
	wc := &workerConn{s: s}
	defer wc.close()
	for j := range work {
		var rest []string
		for i, id := range j.ids {
			select {
			case <-stop:
				rest = j.ids[i:]
			default:
			}
			if rest != nil {
				break
			}
			wc.nextID = ""
			if i+1 < len(j.ids) {
				wc.nextID = j.ids[i+1]
			}
			o := s.deliverOne(ctx, wc, id)
			o.key = j.key
			results <- o
			if (o.connFailed && j.halt) || o.stop {
				rest = j.ids[i+1:]
				break
			}
		}
		wc.nextID = ""
		wc.dropNext()
		wc.park()
		results <- outcome{end: true, key: j.key, rest: rest}
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
	c, err := wc.takeNext(id), error(nil)
	if c == nil {
		c, err = s.opts.Spool.Claim(id)
	}
	if err != nil {
		if !errors.Is(err, spool.ErrBusy) && !errors.Is(err, spool.ErrNotFound) {
			if s.opts.Spool.SetAsideDamaged(id, err) {
				// Damaged in place while the relay runs (emptied, or
				// replaced by a pipe): set aside now, not at the next
				// start, and not tried again at every poll.
				s.log.Error("damaged message set aside in quarantine", "id", id, "err", err)
				s.opts.MailLog.Quarantine(id, err.Error())
				return outcome{id: id, skipped: true}
			}
			s.log.Error("claim failed", "id", id, "err", err)
			return outcome{id: id, skipped: true, stuck: true}
		}
		return outcome{id: id, skipped: true}
	}
	if s.holdNow(c) {
		return outcome{id: id, hold: true}
	}
	s.countOn(c)
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
	if len(c.Env.Recipients) == 0 {
		return s.noRemoteRecipients(c)
	}
	stop := false
	if f := s.opts.ClientFilter; f != nil {
		o, done := s.clientFilter(ctx, f, c)
		if done {
			return o
		}
		stop = o.stop
		if len(c.Env.Recipients) == 0 {
			// The filter removed every To-Remote line and passed
			// the message: nothing would be sent, and the message
			// would be taken for delivered.
			o := s.noRemoteRecipients(c)
			o.stop = stop
			return o
		}
	}
	o := s.attempt(ctx, wc, c)
	o.stop = stop
	return o
}

// noRemoteRecipients fails a message with no recipient to forward to, as
// E-MailRelay does ("no remote recipients"): one whose recipients are all
// To-Local mailboxes (for E-MailRelay's local delivery), or whose To-Remote
// lines a filter or script removed. Taking it for delivered would remove
// mail nobody got.
func (s *Scheduler) noRemoteRecipients(c *spool.Claim) outcome {
	const reason = "no remote recipients"
	s.log.Warn("message failed: it has no recipient to forward to", "id", c.ID(), "local", len(c.Env.Local))
	c.Env.LastReply = reason
	c.Env.NextAttempt = time.Time{}
	c.Env.Reasons = append(c.Env.Reasons, "X-MailRelay-Reason: "+reason, "X-MailRelay-ReasonCode: 0")
	if err := c.Move(spool.Failed); err != nil {
		s.log.Error("recording a message without recipients as failed failed", "id", c.ID(), "err", err)
		c.Unlock()
		return outcome{id: c.ID(), skipped: true, stuck: true}
	}
	return outcome{id: c.ID(), failed: 1}
}

// clientFilter runs the client filter on a claimed message. done means the
// filter settled the message (abandoned, refused, or failed) and no attempt
// is to be made. The outcome's stop says the filter asked to end the
// forwarding run after this message.
func (s *Scheduler) clientFilter(ctx context.Context, f filter.Filter, c *spool.Claim) (outcome, bool) {
	content, err := c.ContentPath()
	if err == nil {
		// The filter may rewrite the content in place: a power loss
		// meanwhile must not leave the acknowledged message cut short.
		err = c.GuardContent()
	}
	if err != nil {
		s.log.Error("the message cannot be written out for the client filter; left for the next run", "id", c.ID(), "err", err)
		c.Unlock()
		return outcome{id: c.ID(), skipped: true, stuck: true}, true
	}
	res := f.Run(ctx, content, c.EnvelopePath())
	if err := c.Relock(); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, spool.ErrNotFound) {
			// The filter took the message away, as E-MailRelay's may:
			// with exit 100, or (as a server filter may, docs/filters.md)
			// with any other answer, when nothing is left to act on.
			if res.Outcome == filter.Abandon {
				s.log.Info("the client filter took the message", "id", c.ID(), "filter", f.String())
			} else {
				s.log.Warn("the client filter took the message's files away; taken as abandoned (exit 100)",
					"id", c.ID(), "filter", f.String(), "result", res.String())
			}
			if err := c.Delete(); err != nil {
				s.log.Warn("the client filter took the message; its claim did not end cleanly", "id", c.ID(), "err", err)
			}
			return outcome{id: c.ID(), skipped: true, stop: res.StopScanning}, true
		}
		var pe *spool.ParseError
		if !errors.As(err, &pe) {
			s.log.Error("after the client filter the message cannot be read; left for the next run", "id", c.ID(), "err", err)
			c.Unlock()
			return outcome{id: c.ID(), skipped: true, stuck: true}, true
		}
		// The filter broke the envelope: a filter failure, recorded on
		// the envelope as it was before the filter, so that the message
		// is retried with the queue's backoff and in the end bounced,
		// rather than claimed again at every poll.
		res = filter.BrokenEnvelope(err)
	} else if fi, err := os.Lstat(content); err == nil && fi.Size() == 0 && res.Outcome == filter.OK {
		// Never sent as an empty message (the claim refuses one too):
		// the recipient would get nothing, and the message be gone.
		res = filter.EmptyContent()
	}
	switch res.Outcome {
	case filter.Abandon:
		// E-MailRelay: skip this message and leave it as it is; it is
		// still to be delivered, so a run counts it untried.
		c.Unlock()
		return outcome{id: c.ID(), skipped: true, stuck: true, stop: res.StopScanning}, true
	case filter.Reject, filter.TempFail:
		// The delivery lines say what the client side would hear; the
		// filter's reason (its second <<...>> line) is for this log.
		s.log.Info("client filter did not pass the message", "id", c.ID(), "filter", f.String(), "result", res.String())
		return s.filterRefused(c, f, res), true
	}
	return outcome{stop: res.StopScanning}, false
}

// Summary counts what a RunOnce did.
type Summary struct {
	Messages, Sent, Deferred, Failed int
	// Untried messages were not attempted: the upstream could not be
	// reached, or an error (a full disk, a broken envelope) left them for
	// the next run.
	Untried int
	// LastReply is the last reply that left a recipient undelivered (an
	// upstream's refusal, or why there was no session), "" if none.
	LastReply string
	// Held and Quarantined count what the run leaves alone by design:
	// held messages, and what recovery set aside. They are not "not
	// delivered" (the exit status is 0 without them), but a run from
	// cron must not pass over them in silence.
	Held, Quarantined int
}

// NotDelivered counts the messages that are still to go.
func (s Summary) NotDelivered() int { return s.Deferred + s.Failed + s.Untried }

// Err is nil when every message was delivered, and otherwise says how many
// were not and the last reply that explains why: the admin's flush shows
// it to the administrator.
func (s Summary) Err() error {
	n := s.NotDelivered()
	if n == 0 {
		return nil
	}
	if s.LastReply == "" {
		return fmt.Errorf("%d of %d message(s) not delivered", n, s.Messages+s.Untried)
	}
	return fmt.Errorf("%d of %d message(s) not delivered; last reply: %s", n, s.Messages+s.Untried, s.LastReply)
}

// String is the summary on one line: "3 message(s): 2 delivered, ...".
func (s Summary) String() string {
	line := fmt.Sprintf("%d message(s): %d delivered, %d deferred, %d failed, %d not tried",
		s.Messages+s.Untried, s.Sent, s.Deferred, s.Failed, s.Untried)
	if s.Held+s.Quarantined > 0 {
		line += fmt.Sprintf("; left alone: %d held, %d quarantined", s.Held, s.Quarantined)
	}
	return line
}

// RunOnce forwards every Ready message once, whatever its back-off says,
// and returns when all are done: E-MailRelay's --as-client and the admin's
// flush. After the upstream cannot be reached, the remaining messages are
// left untouched and counted as untried.
func (s *Scheduler) RunOnce(ctx context.Context) (Summary, error) {
	// A one-off run (--as-client, an admin flush) needs no hand-off of
	// what is accepted after it: it lists the spool.
	defer s.opts.Spool.Unwatch(s)
	d := newDispatcher()
	d.once = true
	d.probe = filter.MayStop(s.opts.ClientFilter)
	s.scan(d, true, true)
	sum := Summary{}
	work, results, wg := s.startWorkers(ctx, ctx.Done())
	reapDone := make(chan struct{})
	go s.reaper(reapDone)
	defer close(reapDone)
	dead := false
	total := d.ready.n
	// parked are messages that waited for a busy destination; they go
	// back in line when a delivery finishes and frees its slot.
	var parked []outcome
	unpark := func() {
		for _, o := range parked {
			d.requeue(o.id, o.key)
		}
		parked = nil
	}
	stalled := time.Time{} // since when only parked messages are left
	stopped := false
	notices := s.notices.Load()
	for round := 0; ; round++ {
		for d.ready.n > 0 || d.working > 0 || len(parked) > 0 {
			if d.ready.n == 0 && d.working == 0 {
				// Only parked messages left: the slots they wait for are
				// held by idle sessions that close within seconds. If they
				// stay held, give up on them: they are counted untried.
				if stalled.IsZero() {
					stalled = time.Now()
				} else if time.Since(stalled) > s.parkLimit {
					unpark()
					break
				}
				time.Sleep(50 * time.Millisecond)
				unpark()
			}
			if !dead && !stopped && ctx.Err() == nil {
				// One upstream: after it cannot be reached, a batch hands
				// back the rest, which would only be deferred too.
				s.dispatch(d, work, s.opts.Router == nil)
			}
			if d.working == 0 {
				break // nothing under way and nothing more to start
			}
			o := <-results
			if o.end {
				d.ended(o)
				continue
			}
			delete(d.inflight, o.id)
			// The client filter ended the run: nothing more starts.
			stopped, d.probe = stopped || o.stop, false
			if o.skipped {
				if o.stuck {
					sum.Untried++ // an error left it for the next run
				}
				continue
			}
			if o.paused && o.sent+o.deferred+o.failed == 0 {
				sum.Untried++ // its destination is paced
				continue
			}
			unpark()
			if !o.waiting {
				stalled = time.Time{}
			}
			if o.waiting {
				parked = append(parked, o)
				if o.sent == 0 && o.deferred == 0 && o.failed == 0 {
					continue
				}
			}
			sum.Messages++
			if o.reply != "" {
				sum.LastReply = o.reply
			}
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
		// The notices this run queued (failures, "relayed", double
		// bounces) go in the same run, not at the next one, which a
		// job run once never has: a listing finds them, and only
		// them among what was listed before. A double bounce ends any
		// chain, so two more rounds at most.
		n := s.notices.Load()
		if n == notices || round == 2 || d.ready.n > 0 || dead || stopped || ctx.Err() != nil {
			break
		}
		notices, stalled = n, time.Time{} // a new round's wait for busy slots starts afresh
		s.scan(d, false, true)
		total += d.ready.n
	}
	sum.Untried += d.ready.n
	close(work)
	for d.working > 0 {
		if o := <-results; o.end {
			d.working--
		}
	}
	wg.Wait()
	if ents, err := s.opts.Spool.List(); err == nil {
		for _, e := range ents {
			if e.State == spool.Held {
				sum.Held++
			}
		}
	}
	sum.Quarantined, _ = s.opts.Spool.QuarantineCount()
	return sum, ctx.Err()
}
