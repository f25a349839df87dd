package deliver

import (
	"fmt"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// filterRefused records a client filter's refusal (res is Reject or
// TempFail) of the recipients still to be delivered, as an upstream's
// reply is recorded: a 5xx fails them and the sender gets a failure
// notice; a 4xx defers them, with the delay warning, until the message
// outlives the queue and fails as expired. A notice refused by the filter
// goes to the postmaster, as one the upstream refused.
func (s *Scheduler) filterRefused(c *spool.Claim, f filter.Filter, res filter.Result) outcome {
	env := c.Env
	env.Attempts++
	reply := fmt.Sprintf("%d %s %s", res.Code, res.Enhanced, res.Text)
	now := s.clock.Now()
	out := outcome{id: c.ID(), stop: res.StopScanning}
	expired := res.Outcome == filter.TempFail && s.expired(env, now)
	var failed []spool.Recipient
	for i := range env.Recipients {
		r := &env.Recipients[i]
		if r.Done() {
			continue
		}
		r.Reply, r.InReplyTo, r.RemoteMTA = reply, "", ""
		result := maillog.Deferred
		switch {
		case res.Outcome == filter.Reject:
			r.Status = spool.Bounced
		case expired:
			r.Status = spool.Bounced
			r.Reply = bounce.Expired(now.Sub(env.Arrival).Round(time.Second), reply)
		default:
			r.Status = spool.Deferred
			out.deferred++
		}
		if r.Status == spool.Bounced {
			result = maillog.Bounced
			out.failed++
			failed = append(failed, *r)
		}
		s.opts.MailLog.Deliver(maillog.Delivery{ID: c.ID(), To: r.Addr, Relay: "filter " + f.String(),
			Result: result, Delay: now.Sub(env.Arrival), Attempt: env.Attempts, Reply: r.Reply, Client: env.Client})
	}
	env.LastReply = reply
	if len(failed) > 0 {
		env.LastReply = failed[0].Reply
		if !s.notify(bounce.Failure, c, failed) && !s.expired(env, now) {
			s.owe(c, failed, now, &out)
			failed = nil
		}
	}
	s.warnDelayed(c, now)
	var err error
	switch {
	case len(failed) > 0 && env.Bounce:
		err = s.doubleBounce(c)
	case len(failed) > 0:
		// The code of the refusal, or 0 for an expiry (no one refused
		// it), as for an upstream's reply.
		env.Reasons = append(env.Reasons, "X-MailRelay-Reason: "+env.LastReply, "X-MailRelay-ReasonCode: "+reasonCode(env.LastReply))
		env.NextAttempt = time.Time{}
		err = c.Move(spool.Failed)
	default:
		env.NextAttempt = now.Add(s.backoff(env.Attempts))
		out.next = env.NextAttempt
		err = c.Move(spool.Ready)
	}
	s.recorded(c.ID(), env.Attempts, err)
	if err != nil {
		s.log.Error("recording the client filter's result failed", "id", c.ID(), "err", err)
		c.Unlock()
	}
	return out
}
