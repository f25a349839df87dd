package deliver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/xtext"
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
	// it, or it is gone).
	skipped bool
	hold    bool
	// waiting: some recipients were not tried because their destination
	// was at its limit; the message is due again soon.
	waiting bool
}

// rcptResult is what one leg of an attempt learnt about one recipient.
type rcptResult struct {
	reply   reply.Reply // the upstream's reply, Code 0 if none
	stage   string      // what the reply answered
	err     error       // the session broke or could not be had
	sent    bool
	relay   string
	waiting bool // not tried: its destination was at its limit
	// dsn: the upstream took the DSN request on, so it, not we, owes
	// the sender any success notice.
	dsn bool
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
	for _, lg := range s.plan(env, pending) {
		s.runLeg(ctx, wc, c, lg, results, &out)
	}

	// Times are taken after the attempt: the back-off starts when the
	// attempt ended (a timeout may have taken minutes), and delay= is the
	// whole time the message has waited, as Postfix logs it.
	now := s.clock.Now()
	byAddr := map[string]int{}
	for i, a := range pending {
		byAddr[a] = i
	}
	waiting := false
	var lastReply string
	var newlyFailed []spool.Recipient
	for k := range env.Recipients {
		r := &env.Recipients[k]
		i, ok := byAddr[r.Addr]
		if !ok || r.Done() {
			continue
		}
		_ = i
		rr := results[r.Addr]
		if rr.waiting {
			// Its destination is busy; nothing was tried: it stays
			// pending and the message comes back at once.
			waiting = true
			continue
		}
		rep, stage, relay := rr.reply, rr.stage, rr.relay
		upstreamReply := rep
		switch {
		case rr.sent:
			r.Status = spool.Sent
			out.sent++
		case rep.Permanent():
			r.Status = spool.Bounced
			out.failed++
		default:
			r.Status = spool.Deferred
			out.deferred++
			if rep.Code == 0 {
				rep = errReply(rr.err)
			}
		}
		r.Reply = rep.String()
		if r.Status == spool.Deferred && s.expired(env, now) {
			// Postfix's wording for a message that outlived the queue.
			r.Status = spool.Bounced
			r.Reply = fmt.Sprintf("message delivery expired after %s in the queue; last reply: %s",
				now.Sub(env.Arrival).Round(time.Second), rep.String())
			out.deferred--
			out.failed++
		}
		if r.Status != spool.Sent {
			lastReply = r.Reply
		}
		if s.opts.OnResult != nil && r.Status != spool.Sent && upstreamReply.Code >= 400 {
			eff := s.opts.OnResult(Result{Env: env, Rcpt: *r, Relay: relay, Reply: upstreamReply, Stage: stage})
			out.hold = out.hold || eff.Hold
			if eff.Settle != "" && eff.Settle != r.Status {
				switch r.Status {
				case spool.Deferred:
					out.deferred--
				case spool.Bounced:
					out.failed--
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
			Delay: now.Sub(env.Arrival), Attempt: env.Attempts, Reply: r.Reply, Client: env.Client})
	}
	if lastReply != "" {
		env.LastReply = lastReply
	}
	for _, r := range env.Recipients {
		if _, tried := byAddr[r.Addr]; tried && r.Status == spool.Bounced {
			newlyFailed = append(newlyFailed, r)
		}
	}
	if len(newlyFailed) > 0 {
		s.notify(NoticeFailure, c, newlyFailed)
	}
	var relayed []spool.Recipient
	for _, r := range env.Recipients {
		if rr, tried := results[r.Addr]; tried && r.Status == spool.Sent && rr.sent && !rr.dsn &&
			strings.Contains(strings.ToUpper(r.Notify), "SUCCESS") {
			relayed = append(relayed, r)
		}
	}
	if len(relayed) > 0 {
		s.notify(NoticeSuccess, c, relayed)
	}
	if s.opts.DelayWarning > 0 && env.Warned.IsZero() && now.Sub(env.Arrival) >= s.opts.DelayWarning {
		var waiting []spool.Recipient
		for _, r := range env.Recipients {
			if r.Status == spool.Deferred {
				waiting = append(waiting, r)
			}
		}
		if len(waiting) > 0 {
			s.notify(NoticeDelay, c, waiting)
			env.Warned = now
		}
	}

	var err error
	switch {
	case out.hold && (env.Count(spool.Deferred) > 0 || env.Count(spool.Pending) > 0):
		// Its client is banned: sending more of its mail would cost the
		// relay more reputation. An administrator releases or deletes it.
		env.NextAttempt = time.Time{}
		err = c.Move(spool.Held)
		s.opts.MailLog.Hold(c.ID(), env.Client, env.From, "client banned")
	case env.Count(spool.Deferred) > 0 || env.Count(spool.Pending) > 0:
		env.NextAttempt = now.Add(s.backoff(env.Attempts))
		if waiting && env.Count(spool.Deferred) == 0 {
			// Only waiting for a busy destination: soon, not after a
			// back-off, and this was no attempt.
			env.Attempts--
			env.NextAttempt = now.Add(busyRetry)
			out.waiting = true
		}
		out.next = env.NextAttempt
		err = c.Move(spool.Ready)
	case env.Count(spool.Bounced) > 0 && env.Bounce:
		// A notice nobody can take: Postfix would send a double bounce
		// to the local postmaster; with no local delivery here it is
		// logged and dropped rather than kept failed forever.
		s.opts.MailLog.Discard(c.ID(), env.Client, env.From, len(env.Recipients), "undeliverable notice", env.LastReply)
		err = c.Delete()
	case env.Count(spool.Bounced) > 0:
		for _, r := range env.Recipients {
			if r.Status == spool.Bounced {
				code, _, _ := strings.Cut(r.Reply, " ")
				env.Reasons = append(env.Reasons, "X-MailRelay-Reason: "+r.Addr+": "+r.Reply,
					"X-MailRelay-ReasonCode: "+firstN(code, 3))
			}
		}
		env.NextAttempt = time.Time{}
		err = c.Move(spool.Failed)
	default:
		err = c.Delete()
	}
	if err != nil {
		// The upstream has the message but the spool could not record
		// it; the claim's lock goes with the error, and a restart
		// delivers it again. A duplicate, never a loss.
		s.log.Error("recording delivery result failed", "id", c.ID(), "err", err)
		c.Unlock()
	}
	return out
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
	var mail []string
	if env.Ret != "" {
		mail = append(mail, "RET="+env.Ret)
	}
	if env.EnvID != "" {
		mail = append(mail, "ENVID="+xtext.Encode(env.EnvID))
	}
	byAddr := map[string]spool.Recipient{}
	for _, r := range env.Recipients {
		byAddr[r.Addr] = r
	}
	rcpt := make([][]string, len(to))
	for i, a := range to {
		r := byAddr[a]
		if r.Notify != "" {
			rcpt[i] = append(rcpt[i], "NOTIFY="+r.Notify)
		}
		if r.ORCPT != "" {
			typ, addr, _ := strings.Cut(r.ORCPT, ";")
			rcpt[i] = append(rcpt[i], "ORCPT="+typ+";"+xtext.Encode(addr))
		}
	}
	return mail, rcpt
}

// expired reports whether a message has outlived the queue.
func (s *Scheduler) expired(env *spool.Envelope, now time.Time) bool {
	life := s.opts.MaxLifetime
	if env.From == "" || env.Bounce {
		life = s.opts.BounceLifetime
	}
	return life > 0 && now.Sub(env.Arrival) >= life
}

func (s *Scheduler) notify(kind Notice, c *spool.Claim, rcpts []spool.Recipient) {
	if s.opts.Notify == nil {
		return
	}
	if err := s.opts.Notify(kind, c.Env, s.opts.Spool.ContentPath(c.ID()), rcpts); err != nil {
		s.log.Error("delivery status notification not sent", "id", c.ID(), "err", err)
	}
}
