package deliver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// outcome is what one attempt at one message came to.
type outcome struct {
	id string
	// next is when the message is due again; zero if it left Ready.
	next time.Time
	// connFailed means no session could be had with the upstream, so
	// other messages to it need not be tried now.
	connFailed             bool
	sent, deferred, failed int
	// skipped means the message could not be claimed (another worker has
	// it, or it is gone); with stuck, an error (or a client filter that
	// abandoned it) left it for the next run untried (a flush counts it so).
	skipped, stuck bool
	hold           bool
	// waiting: some recipients were not tried because their destination
	// was at its limit; the message is due again soon.
	waiting bool
	// paused: no recipient was tried because their destinations are
	// paced; the message is due when the first pause ends.
	paused bool
	// key is the destination whose batch carried the message; with
	// rerouted, dst is the one whose queue it waits in now.
	key      string
	rerouted bool
	dst      route.Destination
	// end marks a worker's batch done rather than a message; rest are
	// the batch's messages it did not start.
	end  bool
	rest []string
	// stop: the client filter asked to end this forwarding run after the
	// message (E-MailRelay's exit codes 102, 104 and 105).
	stop bool
	// reply is the last reply of a recipient not delivered, as its
	// envelope records it.
	reply string
}

// rcptResult is what one leg of an attempt learnt about one recipient.
type rcptResult struct {
	reply reply.Reply // the upstream's reply, Code 0 if none
	stage string      // what the reply answered
	// command is that, in Postfix's words for notices: "RCPT TO".
	command string
	err     error // the session broke or could not be had
	sent    bool
	relay   string
	key     string // the destination's key
	waiting bool   // not tried: its destination was at its limit
	// until, when set, is when the paced destination or recipient may
	// be tried; it was not tried now.
	until time.Time
	// dsn: the upstream took the DSN request on, so it, not we, owes
	// the sender any success notice.
	dsn bool
	// putOff: the host answered 4xx, or the session ended before the
	// content went; another MX host may take the recipient (nextMX).
	putOff bool
}

// attempt delivers one claimed message: its pending recipients are grouped
// into legs (one transaction each, per destination), every recipient's
// result is recorded in the envelope, and the message moves on.
func (s *Scheduler) attempt(ctx context.Context, wc *workerConn, c *spool.Claim) outcome {
	env := c.Env
	out := outcome{id: c.ID()}
	pending := env.Pending()
	env.Attempts++

	results := map[string]rcptResult{}
	legs := s.plan(env, pending)
	for i, lg := range legs {
		wc.lastLeg = i == len(legs)-1
		s.runLeg(ctx, wc, c, lg, results, &out)
	}
	wc.lastLeg = false

	// Times are taken after the attempt: the back-off starts when the
	// attempt ended (a timeout may have taken minutes), and delay= is the
	// whole time the message has waited, as Postfix logs it.
	now := s.clock.Now()
	tried := map[string]bool{}
	for _, a := range pending {
		tried[a] = true
	}
	waiting := false
	var resume []time.Time // when paused recipients may be tried
	var lastReply string
	var newlyFailed []spool.Recipient
	signalled := map[string]bool{}
	for k := range env.Recipients {
		r := &env.Recipients[k]
		if !tried[r.Addr] || r.Done() {
			continue
		}
		rr := results[r.Addr]
		if (rr.waiting || !rr.until.IsZero()) && s.expired(env, now) && s.lifetime(env) != TryOnce {
			// Not tried (its destination is busy or paused) and too
			// old: Postfix bounces what is left of an expired message
			// however its destination is throttled; otherwise a
			// destination paused again before each turn keeps it
			// for ever. Its last reply stands as the reason.
			s.expire(c, r, now, cmp.Or(rr.relay, rr.key))
			out.failed++
			lastReply = r.Reply
			continue
		}
		if rr.waiting {
			// Its destination is busy; nothing was tried: it stays
			// pending and the message comes back at once.
			waiting = true
			continue
		}
		if ctx.Err() != nil && !rr.sent && (rr.err != nil || rr.reply.Code == 0) {
			// The relay's own shutdown cut the attempt short without a
			// reply (its deadline, not the upstream's silence): no
			// attempt, as Postfix's queue keeps a message whose
			// delivery agent was stopped; ready at once at the next start.
			s.log.Info("delivery cut short by the shutdown; the message is ready again", "id", c.ID(), "to", r.Addr)
			waiting = true
			continue
		}
		if !rr.until.IsZero() {
			// Its destination, or the recipient, is paced: not tried.
			resume = append(resume, rr.until)
			continue
		}
		rep, stage, relay := rr.reply, rr.stage, rr.relay
		upstreamReply := rep
		verdict := s.verdict(env, *r, rr)
		switch {
		case rr.sent:
			r.Status = spool.Sent
			out.sent++
			s.paceSuccess(rr.key)
			s.paceSuccess(rcptPrefix + r.Addr)
		case rep.Permanent() && verdict == VerdictNone:
			r.Status = spool.Bounced
			out.failed++
		default:
			// A pace or alert verdict keeps even a 5xx queued: the
			// mail is good, the relay's rate or account is not.
			r.Status = spool.Deferred
			out.deferred++
			if rep.Code == 0 {
				rep = errReply(rr.err)
			}
		}
		// Recorded as the envelope keeps it: a notice made now says
		// what one made after a restart would.
		r.Reply, r.InReplyTo, r.RemoteMTA = rep.Clip(reply.MaxKept).Account(), "", ""
		if rep.Code != 0 && !rep.Local {
			// A server's reply, to a command of the transaction
			// or before it (the greeting, a refused login).
			r.InReplyTo, r.RemoteMTA = rr.command, relayHost(relay)
		}
		s.carryOut(verdict, rr, *r, rep, signalled)
		if r.Status == spool.Deferred && s.expired(env, now) && !(ctx.Err() != nil && (rr.err != nil || upstreamReply.Code == 0)) {
			// (Not when the relay's own shutdown cut the attempt short
			// without a reply: Postfix's queue keeps such a message.)
			// Postfix's wording for a message that outlived the queue.
			r.Status = spool.Bounced
			r.Reply = bounce.Expired(now.Sub(env.Arrival).Round(time.Second), rep.Clip(reply.MaxKept).Account())
			out.deferred--
			out.failed++
		}
		if r.Status != spool.Sent {
			lastReply = r.Reply
		}
		if upstreamReply.Code == 0 && verdict == VerdictAlert {
			// No session: the smarthost refused the relay's login (or
			// its greeting blamed the relay's set-up). The enforcer
			// still hears of it, so that the administrator is told
			// once per cause per hour; nobody is sanctioned for an
			// alert, and the mail stays queued (below).
			var re *remote.Error
			if errors.As(rr.err, &re) {
				upstreamReply, stage = re.Reply, re.Stage
			}
		}
		if s.opts.Refusals != nil && r.Status != spool.Sent && upstreamReply.Code >= 400 && !upstreamReply.Local {
			// Without its file (a write-out failed: the disk is full)
			// the enforcer cannot encapsulate; recording the result
			// below fails the same way, and says so.
			content, _ := c.ContentPath()
			eff := s.opts.Refusals.Refused(Result{Env: env, Rcpt: *r, Relay: relay, Reply: upstreamReply, Stage: stage,
				ContentPath: content})
			if verdict != VerdictNone {
				// Nobody is sanctioned for the relay's pace or
				// account, and the mail stays queued. A hold stands:
				// the enforcer asks for one here only for a message
				// whose client was banned while it was in delivery
				// (a pending hold, which it forgets once answered).
				if eff.Settle == spool.Bounced {
					eff.Settle = ""
				}
			}
			out.hold = out.hold || eff.Hold
			if eff.Settle != "" && eff.Settle != r.Status {
				switch r.Status {
				case spool.Deferred:
					out.deferred--
				case spool.Bounced:
					out.failed--
				}
				if eff.Reply != r.Reply {
					r.InReplyTo, r.RemoteMTA = "", ""
				}
				r.Status, r.Reply = eff.Settle, eff.Reply
				switch r.Status {
				case spool.Sent:
					out.sent++
				case spool.Bounced:
					out.failed++
				}
			}
		}
		if r.Status == spool.Deferred {
			at := now.Add(s.backoff(env.Attempts))
			if until, ok := s.paused(rr.key); ok && until.After(at) {
				at = until
			}
			if until, ok := s.paused(rcptPrefix + r.Addr); ok && until.After(at) {
				at = until
			}
			resume = append(resume, at)
		}
		// Logged after the enforcer's effect, so that the line says what
		// became of the recipient (an encapsulated copy is sent, a spam
		// deferral made permanent is bounced).
		res := maillog.Deferred
		switch r.Status {
		case spool.Sent:
			res = maillog.Sent
		case spool.Bounced:
			res = maillog.Bounced
		}
		s.opts.MailLog.Deliver(maillog.Delivery{ID: c.ID(), To: r.Addr, Relay: relay, Result: res,
			Delay: now.Sub(env.Arrival), Attempt: env.Attempts, Reply: r.Reply, Client: env.Client,
			Transport: s.logName(rr.key)})
	}
	if lastReply == "" && env.Count(spool.Deferred) == 0 && env.Count(spool.Pending) == 0 {
		// Nothing went wrong this time and nothing is left to try: a
		// recipient that failed before is what the message failed for,
		// not an earlier deferral of a recipient since delivered.
		for _, r := range env.Recipients {
			if r.Status == spool.Bounced {
				lastReply = r.Reply
			}
		}
	}
	if lastReply != "" {
		env.LastReply = lastReply
		out.reply = lastReply
	}
	for _, r := range env.Recipients {
		if tried[r.Addr] && r.Status == spool.Bounced {
			newlyFailed = append(newlyFailed, r)
		}
	}
	if len(newlyFailed) > 0 && !s.notify(bounce.Failure, c, newlyFailed) && !s.expired(env, now) {
		resume = append(resume, s.owe(c, newlyFailed, now, &out))
	}
	var relayed []spool.Recipient
	for _, r := range env.Recipients {
		if rr, tried := results[r.Addr]; tried && r.Status == spool.Sent && rr.sent && !rr.dsn &&
			strings.Contains(strings.ToUpper(r.Notify), "SUCCESS") {
			relayed = append(relayed, r)
		}
	}
	if len(relayed) > 0 && !s.notify(bounce.Success, c, relayed) && !s.expired(env, now) {
		resume = append(resume, s.owe(c, relayed, now, &out))
	}
	s.warnDelayed(c, now)

	var err error
	switch {
	case out.hold && (env.Count(spool.Deferred) > 0 || env.Count(spool.Pending) > 0):
		// Its client is banned: sending more of its mail would cost the
		// relay more reputation. An administrator releases or deletes it.
		env.NextAttempt = time.Time{}
		err = c.Move(spool.Held)
		s.opts.MailLog.Hold(c.ID(), env.Client, env.From, "client banned")
	case env.Count(spool.Deferred) > 0 || env.Count(spool.Pending) > 0:
		switch {
		case len(resume) > 0:
			env.NextAttempt = slices.MinFunc(resume, time.Time.Compare)
			if soon := now.Add(busyRetry); waiting && soon.Before(env.NextAttempt) {
				env.NextAttempt = soon
			}
			env.NextAttempt = s.notLaterThanDue(env, now, env.NextAttempt)
			if out.deferred == 0 {
				// Paced (or behind a destination that just failed),
				// nothing deferred now: this was no attempt.
				env.Attempts--
				out.paused = true
			}
		case waiting:
			// Only waiting for a busy destination: soon, not after a
			// back-off, and this was no attempt.
			env.Attempts--
			env.NextAttempt = now.Add(busyRetry)
			out.waiting = true
		default:
			env.NextAttempt = now.Add(s.backoff(env.Attempts))
		}
		out.next = env.NextAttempt
		out.dst, out.rerouted = s.destinationOf(env), true
		err = c.Move(spool.Ready)
	case env.Count(spool.Bounced) > 0 && env.Bounce:
		// A notice nobody can take: Postfix's double bounce to the
		// postmaster; a double bounce that fails too is dropped, which
		// ends any loop.
		err = s.doubleBounce(c)
	case env.Count(spool.Bounced) > 0:
		for _, r := range env.Recipients {
			if r.Status == spool.Bounced {
				env.Reasons = append(env.Reasons, "X-MailRelay-Reason: "+r.Addr+": "+r.Reply,
					"X-MailRelay-ReasonCode: "+reasonCode(r.Reply))
			}
		}
		env.NextAttempt = time.Time{}
		err = c.Move(spool.Failed)
	default:
		err = c.Delivered()
	}
	if out.hold {
		s.holdNext(wc, env.Client)
	}
	s.recorded(c.ID(), env.Attempts, err)
	if err != nil {
		// The upstream has the message but the spool could not record
		// it; the claim's lock goes with the error, and a restart
		// delivers it again. A duplicate, never a loss.
		s.log.Error("recording delivery result failed", "id", c.ID(), "err", err)
		c.Unlock()
	}
	return out
}

// maxUnrecorded bounds Scheduler.unrecorded: past it, a message whose
// result cannot be written backs off from the count on disk, as before.
const maxUnrecorded = 100_000

// countOn gives claimed message c the attempts counted for it that its
// envelope could not record (recorded).
func (s *Scheduler) countOn(c *spool.Claim) {
	if s.unrecordedN.Load() == 0 {
		return // the usual case: no lock a delivery
	}
	s.mu.Lock()
	n := s.unrecorded[c.ID()]
	s.mu.Unlock()
	c.Env.Attempts = max(c.Env.Attempts, n)
}

// recorded notes whether the envelope of message id, which has had
// attempts, was written (err nil) after an attempt. One that was not
// keeps the count in memory, for countOn: on a full disk, where every
// deferral fails to be written, the back-off would otherwise stay at its
// first steps, the count on disk, until the disk had room.
func (s *Scheduler) recorded(id string, attempts int, err error) {
	if err == nil && s.unrecordedN.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		delete(s.unrecorded, id)
	case s.unrecorded == nil:
		s.unrecorded = map[string]int{id: attempts}
	case len(s.unrecorded) < maxUnrecorded:
		s.unrecorded[id] = attempts
	}
	s.unrecordedN.Store(int32(len(s.unrecorded)))
}

// holdNext holds the batch's next message, claimed early to begin its
// transaction behind this one's final dot (ahead), when its client is the
// one this message's refusal banned: the enforcer holds the client's ready
// messages and leaves a claimed one to its own refusal, which this one,
// not sent yet, would never get.
func (s *Scheduler) holdNext(wc *workerConn, client string) {
	n := wc.next
	if n == nil || !sameClient(n.Env.Client, client) {
		return
	}
	wc.next = nil
	n.Env.NextAttempt = time.Time{}
	if err := n.Move(spool.Held); err != nil {
		s.log.Error("the banned client's next message cannot be held", "id", n.ID(), "err", err)
		n.Unlock()
		return
	}
	s.opts.MailLog.Hold(n.ID(), n.Env.Client, n.Env.From, "client banned")
}

// holdNow holds claimed message c when Options.Holds says so; true if
// the claim is done with (held, or left after an error).
func (s *Scheduler) holdNow(c *spool.Claim) bool {
	if s.opts.Holds == nil || !s.opts.Holds.HoldNow(c.ID()) {
		return false
	}
	c.Env.NextAttempt = time.Time{}
	if err := c.Move(spool.Held); err != nil {
		s.log.Error("the banned client's message cannot be held", "id", c.ID(), "err", err)
		c.Unlock()
		return true
	}
	s.opts.MailLog.Hold(c.ID(), c.Env.Client, c.Env.From, "client banned")
	return true
}

// sameClient reports whether two envelopes' clients ("ip:port") are one
// host, as the enforcer's bans see them.
func sameClient(a, b string) bool {
	ha, hb := clientAddr(a), clientAddr(b)
	return ha.IsValid() && ha == hb
}

func clientAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

// relayHost is a relay as notices name the remote MTA, without a port:
// "name[address]" from the router's "name[address]" or
// "name[address:port]", or the smarthost's host from "host:port".
func relayHost(relay string) string {
	if name, in, ok := strings.Cut(relay, "["); ok && strings.HasSuffix(in, "]") {
		if ap, err := netip.ParseAddrPort(strings.TrimSuffix(in, "]")); err == nil {
			return name + "[" + ap.Addr().String() + "]"
		}
		return relay
	}
	if h, _, err := net.SplitHostPort(relay); err == nil {
		return h
	}
	return relay
}

// reasonCode is E-MailRelay's X-MailRelay-ReasonCode for a failure's
// reply: its SMTP code, or 0 when it has none (a refused connection, an
// expiry).
func reasonCode(s string) string {
	r, err := reply.ParseLine(s)
	if err != nil {
		return "0"
	}
	return strconv.Itoa(r.Code)
}

// errReply is the reply recorded for a failure that came with none.
func errReply(err error) reply.Reply {
	var re *remote.Error
	if errors.As(err, &re) {
		return re.AsReply()
	}
	if err == nil {
		err = errors.New("no reply")
	}
	return reply.Reply{Lines: []string{fmt.Sprintf("temporary failure: %v", err)}}
}

// backoff is the wait before attempt n+1: the minimum doubled per attempt,
// capped at the maximum, with up to 10% taken off at random so that
// messages deferred together do not all come back together.
func (s *Scheduler) backoff(attempts int) time.Duration {
	d := s.opts.MinBackoff
	for i := 1; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	s.mu.Lock()
	j := time.Duration(s.rng.Int64N(int64(d)/10 + 1))
	s.mu.Unlock()
	return d - j
}

// dsnParams formats the client's DSN parameters (RFC 3461) for the
// upstream; remote sends them only when the upstream offers DSN.
func dsnParams(env *spool.Envelope, to []string) ([]string, [][]string) {
	byAddr := map[string]spool.Recipient{}
	for _, r := range env.Recipients {
		byAddr[r.Addr] = r
	}
	rcpt := make([][]string, len(to))
	for i, a := range to {
		r := byAddr[a]
		rcpt[i] = remote.DSNRcptParams(r.Notify, r.ORCPT)
	}
	return remote.DSNMailParams(env.Ret, env.EnvID), rcpt
}

// warnDelayed sends the sender the one delay warning (Postfix's
// delay_warning_time) about the deferred recipients of a message that has
// waited DelayWarning.
func (s *Scheduler) warnDelayed(c *spool.Claim, now time.Time) {
	env := c.Env
	if s.opts.DelayWarning <= 0 || !env.Warned.IsZero() || now.Sub(env.Arrival) < s.opts.DelayWarning {
		return
	}
	var waiting []spool.Recipient
	for _, r := range env.Recipients {
		if !r.Done() {
			// Deferred, or not tried yet: behind a paused destination
			// (a quota window) is delayed too.
			waiting = append(waiting, r)
		}
	}
	if len(waiting) > 0 && s.notify(bounce.Delay, c, waiting) {
		env.Warned = now
	}
}

// notLaterThanDue brings a message's next visit forward, from next, to
// when its delay warning or its expiry is due, if next is further away
// than any back-off: only a pause (a quota window of 24 hours) puts it
// there, and the visit, its destination still paused, only warns or
// expires. Otherwise both wait at most a back-off, as in Postfix.
func (s *Scheduler) notLaterThanDue(env *spool.Envelope, now, next time.Time) time.Time {
	if next.Sub(now) <= s.opts.MaxBackoff {
		return next
	}
	var due []time.Time
	if s.opts.DelayWarning > 0 && env.Warned.IsZero() {
		due = append(due, env.Arrival.Add(s.opts.DelayWarning))
	}
	if life := s.lifetime(env); life > 0 {
		due = append(due, lifeStart(env).Add(life))
	}
	for _, d := range due {
		if d.After(now) && d.Before(next) {
			next = d
		}
	}
	return next
}

// logName is the log name of the transport that a destination key
// ("NAME/nexthop...") names, if it has one.
func (s *Scheduler) logName(key string) string {
	name, _, _ := strings.Cut(key, "/")
	return s.opts.LogNames[name]
}

// expire fails a recipient that was not tried in a message that has
// outlived the queue, with Expired's account of its last reply.
func (s *Scheduler) expire(c *spool.Claim, r *spool.Recipient, now time.Time, relay string) {
	env := c.Env
	last := r.Reply
	if last == "" {
		last = env.LastReply
	}
	r.Status = spool.Bounced
	r.Reply = bounce.Expired(now.Sub(env.Arrival).Round(time.Second), last)
	s.opts.MailLog.Deliver(maillog.Delivery{ID: c.ID(), To: r.Addr, Relay: relay, Result: maillog.Bounced,
		Delay: now.Sub(env.Arrival), Attempt: env.Attempts, Reply: r.Reply, Client: env.Client})
}

// TryOnce is the lifetime of Postfix's maximal_queue_lifetime = 0 and
// bounce_queue_lifetime = 0: delivery is tried only once, and a recipient
// that attempt defers fails at once, as expired.
const TryOnce time.Duration = -1

// Lifetime is the Options lifetime for a configured one: Postfix's 0,
// "try only once", is TryOnce.
func Lifetime(configured time.Duration) time.Duration {
	if configured == 0 {
		return TryOnce
	}
	return configured
}

// expired reports whether a message has outlived the queue: with TryOnce,
// as soon as an attempt defers a recipient.
func (s *Scheduler) expired(env *spool.Envelope, now time.Time) bool {
	life := s.lifetime(env)
	return life == TryOnce || life > 0 && now.Sub(lifeStart(env)) >= life
}

// lifeStart is when env's queue lifetime began: its arrival, or when
// queue retry gave a failed message back to the queue.
func lifeStart(env *spool.Envelope) time.Time {
	if env.Requeued.After(env.Arrival) {
		return env.Requeued
	}
	return env.Arrival
}

// lifetime is how long env may stay queued: bounce_queue_lifetime for a
// notice, max_queue_lifetime for the rest.
func (s *Scheduler) lifetime(env *spool.Envelope) time.Duration {
	if env.From == "" || env.Bounce {
		return s.opts.BounceLifetime
	}
	return s.opts.MaxLifetime
}

// notify queues a notice of kind about rcpts, and reports whether it
// could: a notice the spool cannot take (a full disk) is owed (owe).
func (s *Scheduler) notify(kind bounce.Kind, c *spool.Claim, rcpts []spool.Recipient) bool {
	if err := s.Notify(kind, c.Env, c.ContentPath, rcpts); err != nil {
		s.log.Error("delivery status notification not sent", "id", c.ID(), "kind", kind.String(), "err", err)
		return false
	}
	return true
}

// owe defers the recipients whose notice (a bounce, or a "relayed"
// notice) could not be queued, and returns when they are due again: the
// message stays queued, and the next attempt delivers or refuses them
// again and makes the notice then. A duplicate rather than a notice lost,
// as Postfix defers a recipient whose bounce or trace service fails
// ("status=deferred"). A message that has outlived the queue owes
// nothing more: a notice that keeps failing ends with it, rather than
// have the recipients sent the message again for ever.
func (s *Scheduler) owe(c *spool.Claim, rcpts []spool.Recipient, now time.Time, out *outcome) time.Time {
	env := c.Env
	owed := map[string]bool{}
	for _, r := range rcpts {
		owed[r.Addr] = true
	}
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if !owed[r.Addr] {
			continue
		}
		switch r.Status {
		case spool.Sent:
			out.sent--
		case spool.Bounced:
			out.failed--
		}
		out.deferred++
		r.Status = spool.Deferred
		r.Reply = "4.3.0 delivery status notification not queued; will try again (" + r.Reply + ")"
		s.opts.MailLog.Deliver(maillog.Delivery{ID: c.ID(), To: r.Addr, Relay: "none", Result: maillog.Deferred,
			Delay: now.Sub(env.Arrival), Attempt: env.Attempts, Reply: r.Reply, Client: env.Client})
	}
	return now.Add(s.backoff(env.Attempts))
}

// Notify queues a notice of kind k to env's sender about rcpts, as
// Options.Notices does, and kicks the queue to send it; without
// Options.Notices (--no-bounces) it does nothing. The SMTP server's proxy
// mode calls it for the "relayed" notices of a message it never queues.
func (s *Scheduler) Notify(k bounce.Kind, env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) error {
	if s.opts.Notices == nil {
		return nil
	}
	if err := s.opts.Notices.Notify(k, env, content, rcpts); err != nil {
		return err
	}
	s.notices.Add(1)
	s.Kick(false)
	return nil
}

// doubleBounce sends the postmaster a notice that could not be delivered,
// and deletes it; a double bounce that failed itself is only logged.
func (s *Scheduler) doubleBounce(c *spool.Claim) error {
	env := c.Env
	var failed []spool.Recipient
	for _, r := range env.Recipients {
		if r.Status == spool.Bounced {
			failed = append(failed, r)
		}
	}
	if s.opts.Notices != nil {
		sent, err := s.opts.Notices.DoubleBounce(env, c.ContentPath, failed)
		if err != nil {
			// Keep it failed rather than lose it: an administrator
			// sees it in the queue.
			env.NextAttempt = time.Time{}
			if merr := c.Move(spool.Failed); merr != nil {
				// A full disk, often the cause of both: the claim
				// ends with the notice as it was, queued.
				s.log.Error("double bounce not queued, and the notice cannot be marked failed; it stays queued", "id", c.ID(), "err", err, "move_err", merr)
				return merr
			}
			s.log.Error("double bounce not queued; the notice stays failed", "id", c.ID(), "err", err)
			return nil
		}
		if sent {
			s.notices.Add(1)
			s.Kick(false)
			return c.Delivered()
		}
	}
	s.opts.MailLog.Discard(c.ID(), env.Client, env.From, len(env.Recipients), "undeliverable postmaster notification", env.LastReply)
	return c.Delivered()
}

// verdict reads what a refusal (or a refused login) means for the queue.
func (s *Scheduler) verdict(env *spool.Envelope, r spool.Recipient, rr rcptResult) Verdict {
	if !rr.sent && remote.OwnCredentials(rr.err) {
		// The relay could not get its own login's credentials (an
		// OAuth 2 refresh failed): its set-up is at fault, as when the
		// smarthost refuses the login. The mail waits; the
		// administrator is alerted.
		return VerdictAlert
	}
	res, ok := refusal(env, r, rr)
	if !ok {
		return VerdictNone
	}
	return s.verdicts().Verdict(res)
}

// refusal is the upstream's refusal of a recipient as the enforcer reads
// it; false if there is none (it was sent, the reply is the relay's own).
func refusal(env *spool.Envelope, r spool.Recipient, rr rcptResult) (Result, bool) {
	if rr.sent || rr.reply.Local {
		return Result{}, false // no upstream said it
	}
	res := Result{Env: env, Rcpt: r, Relay: rr.relay, Reply: rr.reply, Stage: rr.stage}
	var re *remote.Error
	if res.Reply.Code == 0 && errors.As(rr.err, &re) && re.Reply.Code != 0 {
		// No session: the reply to the greeting, EHLO, STARTTLS or the
		// relay's login ("auth").
		res.Reply, res.Stage = re.Reply, re.Stage
	}
	return res, res.Reply.Code >= 400
}

func (s *Scheduler) verdicts() Verdicts {
	if s.opts.Verdicts == nil {
		return StockVerdicts{}
	}
	return s.opts.Verdicts
}

// carryOut does what a verdict asks of the queue, once per destination per
// attempt.
func (s *Scheduler) carryOut(v Verdict, rr rcptResult, r spool.Recipient, rep reply.Reply, done map[string]bool) {
	key := rr.key
	switch v {
	case VerdictNone:
		return
	case VerdictPaceRecipient:
		key = rcptPrefix + r.Addr
	case VerdictAlert:
		if !done["alert "+key] {
			done["alert "+key] = true
			s.opts.MailLog.DestinationAlert(key, rr.relay, rep.String())
		}
		return
	}
	if done[key] || key == "" {
		return
	}
	done[key] = true
	s.paceSignal(key, v, rep)
}
