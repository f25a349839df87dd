package milter

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// session is one message's exchange with the milter, step by step as a
// Postfix smtpd would have it.
type session struct {
	m    *Milter
	s    *gomilter.ClientSession
	conn *conn
	msg  *message
}

// close ends the session: an abort if a message is still open, then quit.
func (ses *session) close() {
	ses.conn.arm(ses.m.timeout)
	ses.s.Close()
}

// run replays the transaction. It returns the milter's decision and, when
// the message goes on, the changes the milter asked for at end-of-message.
// An error means the milter gave no usable answer.
func (ses *session) run() (filter.Result, []gomilter.ModifyAction, error) {
	env := ses.msg.env
	m := ses.m
	// Connect. A message with no client address (one relaykeeper made
	// itself) comes from localhost, as Postfix's non_smtpd_milters see it.
	host, family, port, addr := clientInfo(env.Client)
	macros := append([]string{}, m.macros...)
	macros = append(macros, "{client_addr}", addr, "{client_port}", strconv.Itoa(int(port)),
		"{client_name}", host, "{client_ptr}", host)
	ses.conn.arm(m.timeout)
	if err := ses.s.Macros(gomilter.CodeConn, macros...); err != nil {
		return filter.Result{}, nil, err
	}
	act, err := ses.s.Conn(host, family, port, addr)
	if res, done, err := m.decide("connect", act, err); done || err != nil {
		return res, nil, err
	}

	helo := env.Helo
	if helo == "" {
		helo = host
	}
	ses.conn.arm(m.timeout)
	act, err = ses.s.Helo(helo)
	if res, done, err := m.decide("helo", act, err); done || err != nil {
		return res, nil, err
	}

	id := queueID(ses.msg.contentPath)
	macros = []string{"i", id, "{mail_addr}", env.From}
	if env.AuthID != "" {
		// OpenDKIM signs, rather than verifies, mail whose {auth_type} is
		// set. The envelope does not record the SASL mechanism.
		macros = append(macros, "{auth_authen}", env.AuthID, "{auth_type}", "unknown")
	}
	ses.conn.arm(m.timeout)
	if err := ses.s.Macros(gomilter.CodeMail, macros...); err != nil {
		return filter.Result{}, nil, err
	}
	act, err = ses.s.Mail(env.From, mailArgs(env.BodyType, env.SMTPUTF8))
	if res, done, err := m.decide("mail", act, err); done || err != nil {
		return res, nil, err
	}

	for _, r := range env.Recipients {
		if r.Status == spool.Sent {
			continue // not in X-MailRelay-To-Remote
		}
		ses.conn.arm(m.timeout)
		if err := ses.s.Macros(gomilter.CodeRcpt, "{rcpt_addr}", r.Addr); err != nil {
			return filter.Result{}, nil, err
		}
		act, err = ses.s.Rcpt(r.Addr, nil)
		if res, done, err := m.decide("rcpt <"+r.Addr+">", act, err); done || err != nil {
			return res, nil, err
		}
	}

	for _, f := range ses.msg.fields {
		ses.conn.arm(m.timeout)
		act, err = ses.s.HeaderField(f.name, f.value)
		if res, done, err := m.decide("header", act, err); done || err != nil {
			return res, nil, err
		}
	}
	ses.conn.arm(m.timeout)
	act, err = ses.s.HeaderEnd()
	if res, done, err := m.decide("end-of-header", act, err); done || err != nil {
		return res, nil, err
	}

	body := ses.msg.body()
	buf := make([]byte, gomilter.MaxBodyChunk)
	for {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			ses.conn.arm(m.contentTimeout)
			act, err = ses.s.BodyChunk(buf[:n])
			if err == nil && act.Code == gomilter.ActSkip {
				break
			}
			if res, done, err := m.decide("body", act, err); done || err != nil {
				return res, nil, err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return tempFail("milter %s: read %s: %v", m.addr, ses.msg.contentPath, rerr), nil, nil
		}
	}

	ses.conn.arm(m.contentTimeout)
	if err := ses.s.Macros(gomilter.CodeEOB, "i", id); err != nil {
		return filter.Result{}, nil, err
	}
	mods, act, err := ses.s.End()
	if err == nil {
		err = ses.checkNegotiated(mods)
	}
	res, done, err := m.decide("end-of-message", act, err)
	if err != nil {
		return res, nil, err
	}
	if !done {
		res = filter.Result{Outcome: filter.OK} // continue counts as accept here
	}
	if res.Outcome != filter.OK {
		return res, nil, nil
	}
	for _, mod := range mods {
		if mod.Code == gomilter.ActQuarantine {
			res.Reason = QuarantinePrefix + oneLine(mod.Reason)
			res.Hold = true
			if mod.Reason == "" {
				res.Reason = QuarantinePrefix + "milter " + m.addr
			}
		}
	}
	return res, mods, nil
}

// decide turns the milter's answer to a step into a result. done says the
// exchange ends with res; an error says there was no usable answer.
func (m *Milter) decide(step string, act *gomilter.Action, err error) (res filter.Result, done bool, _ error) {
	if err != nil {
		return res, false, fmt.Errorf("%s: %w", step, err)
	}
	reason := func(what string) string {
		return oneLine(fmt.Sprintf("milter %s: %s at %s", m.addr, what, step))
	}
	switch act.Code {
	case gomilter.ActContinue:
		return res, false, nil
	case gomilter.ActAccept:
		return filter.Result{Outcome: filter.OK}, true, nil
	case gomilter.ActDiscard:
		return filter.Result{Outcome: filter.Abandon, Reason: reason("discard")}, true, nil
	case gomilter.ActReject:
		// Postfix's text for a milter's plain reject.
		return filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1",
			Text: "Command rejected", Reason: reason("reject")}, true, nil
	case gomilter.ActTempFail:
		return filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.7.1",
			Text: "Service unavailable - try again later", Reason: reason("tempfail")}, true, nil
	case gomilter.ActReplyCode:
		res, ok := replyResult(act.SMTPCode, act.SMTPText)
		if !ok {
			return res, false, fmt.Errorf("%s: bad reply %d %q", step, act.SMTPCode, act.SMTPText)
		}
		res.Reason = reason(fmt.Sprintf("%d %s %s", res.Code, res.Enhanced, res.Text))
		return res, true, nil
	}
	return res, false, fmt.Errorf("%s: unexpected action %q", step, rune(act.Code))
}

// replyResult turns a milter's SMTP reply (smfi_setreply, smfi_setmlreply)
// into a Reject (5xx) or TempFail (4xx). text is what follows the first
// code, "5.7.1 text" or a multi-line "5.7.1 a\r\n550-5.7.1 b"; its lines
// are joined with spaces.
func replyResult(code int, text string) (filter.Result, bool) {
	res := filter.Result{Code: code}
	switch code / 100 {
	case 5:
		res.Outcome, res.Enhanced, res.Text = filter.Reject, "5.7.1", "Command rejected"
	case 4:
		res.Outcome, res.Enhanced, res.Text = filter.TempFail, "4.7.1", "Service unavailable - try again later"
	default:
		return res, false
	}
	var parts []string
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i > 0 && len(line) >= 4 && line[:3] == strconv.Itoa(code) && (line[3] == '-' || line[3] == ' ') {
			line = line[4:]
		}
		line = strings.TrimSpace(line)
		if enh, rest, _ := strings.Cut(line, " "); isEnhanced(enh) {
			if i == 0 && enh[0] == res.Enhanced[0] {
				res.Enhanced = enh
			}
			line = strings.TrimSpace(rest)
		}
		if line != "" {
			parts = append(parts, line)
		}
	}
	if t := printable(strings.Join(parts, " ")); t != "" {
		res.Text = t
	}
	return res, true
}

// isEnhanced reports whether s looks like an RFC 3463 status code, x.y.z.
func isEnhanced(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || (p[0] != "2" && p[0] != "4" && p[0] != "5") {
		return false
	}
	for _, n := range p[1:] {
		if _, err := strconv.ParseUint(n, 10, 16); err != nil || len(n) > 3 {
			return false
		}
	}
	return true
}

// printable keeps reply text to printable ASCII, as a reply line needs.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	return strings.TrimSpace(string(b))
}

// clientInfo gives the connect step's arguments for the envelope's client
// ip:port. The host name is the address in brackets, as libmilter
// documents for a client without a name.
func clientInfo(client string) (host string, family gomilter.ProtoFamily, port uint16, addr string) {
	h, p, err := net.SplitHostPort(client)
	ip := net.ParseIP(h)
	if err != nil || ip == nil {
		return "localhost", gomilter.FamilyInet, 0, "127.0.0.1"
	}
	n, _ := strconv.ParseUint(p, 10, 16)
	if ip4 := ip.To4(); ip4 != nil {
		return "[" + ip4.String() + "]", gomilter.FamilyInet, uint16(n), ip4.String()
	}
	return "[IPv6:" + ip.String() + "]", gomilter.FamilyInet6, uint16(n), ip.String()
}

// mailArgs are the MAIL command's ESMTP parameters the client gave.
func mailArgs(bodyType string, smtputf8 bool) []string {
	var args []string
	switch strings.ToLower(bodyType) {
	case "8bit":
		args = append(args, "BODY=8BITMIME")
	case "binarymime":
		args = append(args, "BODY=BINARYMIME")
	}
	if smtputf8 {
		args = append(args, "SMTPUTF8")
	}
	return args
}

// checkNegotiated refuses a change the milter did not negotiate, or that
// relaykeeper does not offer (smfi_chgfrom): the milter broke the protocol,
// and Postfix then applies milter_default_action rather than pass the
// message without the change.
func (ses *session) checkNegotiated(mods []gomilter.ModifyAction) error {
	for _, mod := range mods {
		opt, what := modOption(mod.Code)
		if opt&actions == 0 || !ses.s.ActionOption(opt) {
			return fmt.Errorf("the milter asked to %s, which was not negotiated", what)
		}
		if err := checkHeaderChange(mod); err != nil {
			return err
		}
	}
	return nil
}

// modOptions are the negotiation flag each change needs, and what it does.
var modOptions = map[gomilter.ModifyActCode]struct {
	opt  gomilter.OptAction
	what string
}{
	gomilter.ActAddHeader:    {gomilter.OptAddHeader, "add a header"},
	gomilter.ActInsertHeader: {gomilter.OptAddHeader, "insert a header"},
	gomilter.ActChangeHeader: {gomilter.OptChangeHeader, "change a header"},
	gomilter.ActReplBody:     {gomilter.OptChangeBody, "replace the body"},
	gomilter.ActAddRcpt:      {gomilter.OptAddRcpt, "add a recipient"},
	gomilter.ActDelRcpt:      {gomilter.OptRemoveRcpt, "remove a recipient"},
	gomilter.ActQuarantine:   {gomilter.OptQuarantine, "quarantine the message"},
	gomilter.ActChangeFrom:   {gomilter.OptChangeFrom, "change the sender"},
}

// modOption is the negotiation flag a change needs, and what it does.
func modOption(c gomilter.ModifyActCode) (gomilter.OptAction, string) {
	if o, ok := modOptions[c]; ok {
		return o.opt, o.what
	}
	return 0, fmt.Sprintf("make change %q", rune(c))
}
