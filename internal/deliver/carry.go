package deliver

import (
	"context"
	"io"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/eightbit"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// carry sends the message to a leg's recipients over conn; ahead, if set,
// gives the batch's next message to begin behind the final dot. ok is
// false when no transaction was begun: the recipients' results are
// recorded already (the content cannot be read, or needs SMTPUTF8 that the
// server lacks).
func (s *Scheduler) carry(ctx context.Context, c *spool.Claim, lg leg, conn *remote.Conn, relay string,
	results map[string]rcptResult, ahead func() *remote.Message) (res *remote.Result, sendErr error, ok bool) {
	env := c.Env
	body, size, err := c.Content()
	if err != nil {
		// The content is unreadable: nothing upstream can help.
		s.log.Error("cannot read content", "id", c.ID(), "err", err)
		for _, a := range lg.rcpts {
			results[a] = rcptResult{err: err, relay: relay}
		}
		return nil, nil, false
	}
	defer body.Close()
	var content io.Reader = body
	prefix := "" // what goes before the content
	if strings.HasPrefix(lg.dst.Key, contentFilterKey) {
		// The filter hands the message back from its own address; the
		// client that submitted it (and its verified name, which the
		// welcomelist may list) travels in a header the reinject
		// listener reads and removes, so that the enforcer still bans
		// the right client, and spares a welcomelisted one.
		hdr := filter.OriginalClientField(env.Client, env.ClientName)
		prefix = hdr
		content = io.MultiReader(strings.NewReader(hdr), body)
		size += int64(len(hdr))
	}
	from := s.forwardFrom(env, lg)
	smtputf8 := env.SMTPUTF8
	if _, offered := conn.Extension("SMTPUTF8"); smtputf8 && !offered {
		// Read from where the claim holds it: a message served from
		// memory need not be written out for this.
		head, _, err := c.Content()
		need := false
		if err == nil {
			need, err = eightbit.HeadersNeedUTF8(head)
			head.Close()
		}
		if need || err != nil {
			for _, a := range lg.rcpts {
				results[a] = utf8Result(a, from, relay, err)
			}
			return nil, nil, false
		}
		smtputf8 = false // nothing needs it; UTF-8 addresses fail alone
	}
	eightBit := env.BodyType == "8bit"
	if _, offered := conn.Extension("8BITMIME"); eightBit && !offered {
		open := func() (io.ReadCloser, error) {
			body, _, err := c.Content()
			if err != nil {
				return nil, err
			}
			return readCloser{io.MultiReader(strings.NewReader(prefix), body), body}, nil
		}
		r, n, stop, ok, err := eightbit.Converted(open)
		if err != nil {
			s.log.Warn("8-bit message cannot be read for conversion for an upstream without 8BITMIME; sent as it is",
				"id", c.ID(), "err", err)
		}
		if ok {
			content, size, eightBit = r, n, false
			defer stop()
		}
	}
	msg := &remote.Message{From: from, To: lg.rcpts, Body: content, Size: size,
		EightBit: eightBit, SMTPUTF8: smtputf8}
	msg.MailParams, msg.RcptParams = dsnParams(env, lg.rcpts)
	var next *remote.Message
	if ahead != nil {
		next = ahead()
	}
	res, sendErr = conn.SendAhead(ctx, msg, next)
	return res, sendErr, true
}

// record notes what a transaction on conn came to for each recipient.
// A recipient the host put off (a 4xx to MAIL, its RCPT, DATA or the end
// of the content, or a session that ended before the content went) may go
// on to the next MX host (nextMX).
func record(rcpts []string, conn *remote.Conn, relay string, res *remote.Result, sendErr error, results map[string]rcptResult) {
	_, upstreamDSN := conn.Extension("DSN")
	for i, a := range rcpts {
		rr := rcptResult{relay: relay, err: sendErr, dsn: upstreamDSN}
		if res != nil && res.Mail.Code != 0 {
			rr.reply = res.RcptReply(i)
			switch {
			case res.Mail.Code/100 != 2:
				rr.stage, rr.command = "mail", "MAIL FROM"
			case i < len(res.Rcpt) && res.Rcpt[i].Code/100 != 2:
				rr.stage, rr.command = "rcpt", "RCPT TO"
			case res.Content:
				rr.stage, rr.command = "data", "end of DATA"
			default:
				rr.stage, rr.command = "data command", "DATA"
			}
		}
		rr.sent = sendErr == nil && res != nil && res.Accepted(i)
		// Lost after the content went, with no verdict, the message may
		// have been delivered: it is not offered to another host.
		rr.putOff = !rr.sent && (rr.reply.Code/100 == 4 ||
			rr.reply.Code == 0 && sendErr != nil && (res == nil || !res.Content))
		results[a] = rr
	}
}
