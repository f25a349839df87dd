package smtpd

import (
	"io"
	"net/netip"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/relaykeeper/relaykeeper/internal/anvil"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/policy"
)

// checkData runs the data restrictions for DATA and a transaction's first
// BDAT, and answers a refusal itself; done reports that it did, err what
// the read returns then (a 421 ends the session).
func (c *commandConn) checkData(verb, arg string) (done bool, err error) {
	if verb != "DATA" && (verb != "BDAT" || c.bdat) || c.sess == nil {
		return false, nil
	}
	r := c.sess.dataCheck()
	if r == "" {
		return false, nil
	}
	if size, _, _ := bdatArgs(arg); verb == "BDAT" && size > 0 {
		// The chunk follows its command whatever the reply.
		io.CopyN(io.Discard, c.br, size)
	}
	if strings.HasPrefix(r, "421") {
		c.reply(r)
		c.closed = true
		return true, io.EOF
	}
	return true, c.reply(r)
}

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
	if d, ok := ss.s.opts.Policy.(interface{ ChecksData() bool }); ok && !d.ChecksData() {
		return ""
	}
	rcpt := ""
	if len(ss.rcpts) == 1 {
		rcpt = ss.givenRcpt
	}
	d := ss.s.opts.Policy.Check(ss.s.ctx, policy.StageData, ss.request(rcpt))
	for _, w := range d.Warnings {
		ss.s.log.Info("policy warning", "client", ss.client(), "from", ss.given, "stage", "data", "warning", w)
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
	ss.s.opts.MailLog.Reject(ss.client(), "data", reply, "from", maillog.Addr(ss.given), "rule", d.Rule)
	return reply
}

// endOfDataCheck runs the end-of-data restrictions (Postfix's
// smtpd_end_of_data_restrictions) once the whole message has come, before
// it is accepted: the request carries the message's size and id, and the
// recipient only when the transaction has one. A refusal is returned as
// the reply to the end of data (the draft is then dropped, and in proxy
// mode the upstream never gets the final dot); HOLD, DISCARD, FILTER,
// REDIRECT and BCC are kept for the message. PREPEND comes too late to
// go in the header and is logged instead.
func (ss *session) endOfDataCheck(id string, size int64) error {
	if ss.s.opts.Policy == nil {
		return nil
	}
	if d, ok := ss.s.opts.Policy.(interface{ ChecksEndOfData() bool }); !ok || !d.ChecksEndOfData() {
		return nil
	}
	rcpt := ""
	if len(ss.rcpts) == 1 {
		rcpt = ss.givenRcpt
	}
	req := ss.request(rcpt)
	req.Size, req.QueueID = size, id
	d := ss.s.opts.Policy.Check(ss.s.ctx, policy.StageEndOfData, req)
	for _, w := range d.Warnings {
		ss.s.log.Info("policy warning", "client", ss.client(), "from", ss.given, "stage", "end-of-data", "warning", w)
	}
	switch d.Verdict {
	case policy.Reject, policy.Defer:
		return ss.refuse("end-of-data", &smtp.SMTPError{Code: d.Code, EnhancedCode: enhanced(d.Enhanced), Message: d.Text},
			"from", maillog.Addr(ss.given), "rule", d.Rule)
	case policy.Drop:
		ss.s.opts.MailLog.Reject(ss.client(), "end-of-data", "421 4.7.0 connection dropped", "from", maillog.Addr(ss.given), "rule", d.Rule)
		ss.conn.Conn().Close()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "closing connection"}
	}
	if len(d.Prepend) > 0 {
		ss.s.log.Warn("PREPEND at the end of data comes after the header; not added", "id", id, "rule", d.Rule,
			"header", strings.Join(d.Prepend, " | "))
		d.Prepend = nil
	}
	ss.keepActions(d)
	return nil
}

// rewritesHeaders reports whether the canonical maps apply to this
// message's header too: Postfix's local_header_rewrite_clients, whose
// default, permit_inet_interfaces, is mail from the relay's own host.
func (ss *session) rewritesHeaders() bool {
	if !ss.s.opts.Canonical.Enabled() {
		return false
	}
	ip := addrIP(ss.conn.Conn().RemoteAddr()).Unmap()
	for _, w := range ss.s.opts.HeaderRewriteClients {
		switch w {
		case "static:all":
			return true
		case "permit_sasl_authenticated":
			if ss.authID != "" {
				return true
			}
		case "permit_mynetworks":
			if t, ok := ss.s.opts.Policy.(interface{ Trusted(netip.Addr) bool }); ok && t.Trusted(ip) {
				return true
			}
		case "permit_inet_interfaces":
			if ip.IsLoopback() || ip == addrIP(ss.conn.Conn().LocalAddr()).Unmap() {
				return true
			}
		}
	}
	return false
}

// overRate counts a message or a recipient for the client's rate limit,
// and returns Postfix's refusal past it.
func (ss *session) overRate(ev anvil.Event) *smtp.SMTPError {
	if ss.s.opts.Rates == nil {
		return nil
	}
	ip := addrIP(ss.conn.Conn().RemoteAddr())
	if ss.s.withinRate(ip, ev) {
		return nil
	}
	text := "Error: too much mail from " + ip.String()
	if ev == anvil.Recipient {
		text = "Error: too many recipients from " + ip.String()
	}
	return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: text}
}
