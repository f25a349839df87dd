package smtpd

import (
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/policy"
)

// dataCheck runs the data restrictions (Postfix's
// smtpd_data_restrictions) when the client says DATA, or its first BDAT,
// before go-smtp answers 354 or takes the chunk. It returns the reply
// that refuses the command, "" to go on. As in Postfix, the recipient
// is given only when the transaction has one; a refused DATA leaves the
// transaction open, for RSET or QUIT.
func (ss *session) dataCheck() string {
	if ss.s.opts.Policy == nil || ss.discard {
		return ""
	}
	rcpt := ""
	if len(ss.rcpts) == 1 {
		rcpt = ss.rcpts[0]
	}
	d := ss.s.opts.Policy.Check(ss.s.ctx, policy.StageData, ss.request(rcpt))
	for _, w := range d.Warnings {
		ss.s.log.Info("policy warning", "client", ss.client(), "from", ss.from, "stage", "data", "warning", w)
	}
	reply := ""
	switch d.Verdict {
	case policy.Reject, policy.Defer:
		reply = d.Reply()
	case policy.Drop:
		reply = "421 4.7.0 connection dropped" // the command layer closes
	default:
		ss.keepActions(d)
		return ""
	}
	ss.s.opts.MailLog.Reject(ss.client(), "data", reply, "from", maillog.Addr(ss.from), "rule", d.Rule)
	return reply
}
