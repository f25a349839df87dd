package deliver

import (
	"context"
	"errors"
	"slices"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// NextDialer is a Router that says which MX hosts a dial passed over
// (route.Dialer.DialHosts), and opens a session with a destination's next
// MX host, none of the addresses tried (route.Dialer.DialNext);
// route.ErrNoNextHost says none was left.
type NextDialer interface {
	DialHosts(ctx context.Context, dst route.Destination) (conn *remote.Conn, relay string, passed []route.PassedHost, err error)
	DialNext(ctx context.Context, dst route.Destination, tried []string) (conn *remote.Conn, relay string, passed []route.PassedHost, err error)
}

// nextMX carries the recipients that the host of a leg put off (a 4xx, or
// a session that ended before the content went) to the destination's next
// MX host in the same attempt, as Postfix's smtp client does; recipients a
// host accepted, or refused for good (5xx), are not sent again. Each host
// that put a recipient off, or was passed over, is logged (a skip line,
// Postfix's "host ... said"), and the last host's reply is the recipient's
// result. A reply the enforcer reads as about the relay (pace, quota,
// alert: the other MX hosts are the same provider's) or about the message
// (MessageVerdicts) ends the walk, so that the slow-down and the enforcer
// work as they did, on that reply, once. It stops at route.MXSessionLimit
// sessions; when no other host answers, the replies of the last one stand.
// The session with the next host is the delivery's own: it uses the
// worker's slot and is closed after the leg, never parked.
func (s *Scheduler) nextMX(ctx context.Context, c *spool.Claim, lg leg, first *remote.Conn, passed []route.PassedHost,
	results map[string]rcptResult) {
	nd, ok := s.opts.Router.(NextDialer)
	if _, direct := directAddr(lg.dst.Key); !ok || direct {
		return
	}
	tried := []string{first.Addr()}
	for _, h := range passed {
		tried = append(tried, h.Addr)
	}
	for sessions := 1; sessions < route.MXSessionLimit && ctx.Err() == nil; sessions++ {
		kept := s.putOff(c.Env, lg.rcpts, results)
		if len(kept) == 0 {
			return
		}
		conn, relay, passed, err := nd.DialNext(ctx, lg.dst, tried)
		for _, h := range passed {
			tried = append(tried, h.Addr)
		}
		if err != nil {
			// The hosts tried are logged; the replies of the last host
			// that answered stand.
			s.logPassed(c, kept, passed)
			if !errors.Is(err, route.ErrNoNextHost) {
				s.log.Info("no other MX host answered; the last host's replies stand", "id", c.ID(),
					"destination", lg.dst.Key, "err", err)
			}
			return
		}
		s.checkpoint(c, results)
		for _, a := range kept {
			rr := results[a]
			s.logSkip(c, []string{a}, rr.relay, rr.reply, rr.err)
		}
		s.logPassed(c, kept, passed)
		sub := lg
		sub.rcpts = kept
		// The same delivery: no destination_rate_delay before it.
		res, sendErr, ok := s.carry(ctx, c, sub, conn, relay, results, nil)
		if ok {
			s.rateDone(lg.dst)
			record(kept, conn, relay, res, sendErr, results)
		}
		conn.Quit()
	}
}

// putOff are the recipients of a leg that its host put off and another MX
// host may take: none if a reply is the destination's verdict on the relay
// (pace, quota, alert) or on the message (MessageVerdicts).
func (s *Scheduler) putOff(env *spool.Envelope, rcpts []string, results map[string]rcptResult) []string {
	var kept []string
	for _, a := range rcpts {
		rr := results[a]
		if !rr.putOff {
			continue
		}
		res, refused := refusal(env, recipientOf(env, a), rr)
		if !refused {
			kept = append(kept, a) // the session ended: no reply to read
			continue
		}
		if mv, ok := s.verdicts().(MessageVerdicts); ok && mv.AboutMessage(res) {
			return nil
		}
		switch s.verdicts().Verdict(res) {
		case VerdictNone:
			kept = append(kept, a)
		case VerdictPaceRecipient:
			// This recipient receives too fast: it waits, the others go.
		default:
			return nil
		}
	}
	return kept
}

// recipientOf is env's recipient addr.
func recipientOf(env *spool.Envelope, addr string) spool.Recipient {
	for _, r := range env.Recipients {
		if r.Addr == addr {
			return r
		}
	}
	return spool.Recipient{Addr: addr}
}

// checkpoint writes the envelope with the recipients taken so far in this
// attempt marked sent, before another host is tried or a rate delay is
// waited out: if the relay dies meanwhile, they are not sent again when it
// restarts. The
// attempt records every result at its end as before; in memory the
// envelope is left as it was.
func (s *Scheduler) checkpoint(c *spool.Claim, results map[string]rcptResult) {
	env := c.Env
	saved := slices.Clone(env.Recipients)
	taken := false
	for k := range env.Recipients {
		r := &env.Recipients[k]
		rr, ok := results[r.Addr]
		if !ok || !rr.sent || r.Done() {
			continue
		}
		taken = true
		r.Status, r.Reply, r.InReplyTo, r.RemoteMTA = spool.Sent, rr.reply.Account(), "", ""
		if rr.reply.Code != 0 && !rr.reply.Local {
			r.InReplyTo, r.RemoteMTA = rr.command, relayHost(rr.relay)
		}
	}
	if taken {
		if err := c.Save(); err != nil {
			s.log.Warn("the recipients taken so far could not be recorded before the attempt went on",
				"id", c.ID(), "err", err)
		}
	}
	env.Recipients = saved
}

// logSkip writes a skip line for each recipient that a host put off: its
// reply, or how the session failed.
func (s *Scheduler) logSkip(c *spool.Claim, rcpts []string, relay string, rep reply.Reply, err error) {
	if rep.Code == 0 {
		rep = errReply(err)
	}
	now := s.clock.Now()
	for _, a := range rcpts {
		s.opts.MailLog.Skip(maillog.Delivery{ID: c.ID(), To: a, Relay: relay, Delay: now.Sub(c.Env.Arrival),
			Attempt: c.Env.Attempts, Reply: rep.Account(), Client: c.Env.Client})
	}
}

// logPassed writes the skip lines of the MX hosts a dial passed over
// (refused, or a greeting that refused the session), as Postfix logs
// "connect to ..." and "host ... refused to talk to me".
func (s *Scheduler) logPassed(c *spool.Claim, rcpts []string, passed []route.PassedHost) {
	for _, h := range passed {
		s.logSkip(c, rcpts, h.Relay, reply.Reply{}, h.Err)
	}
}
