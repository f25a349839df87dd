package smtpd

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/anvil"
	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/eightbit"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var sprintf = fmt.Sprintf
var sprint = fmt.Sprint

// Replies that are ours, not an upstream's.
var (
	errStorage = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "Insufficient system storage; message not accepted, try again later"}
	errLocal = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Local error in processing; message not accepted, try again later"}
)

// session is one client's SMTP session, from HELO to disconnect.
type session struct {
	s    *Server
	conn *smtp.Conn
	cc   *commandConn // the command layer: TLS state
	tc   *trackedConn

	from     string
	mailOpts *smtp.MailOptions
	// given and givenRcpt are the sender and the first recipient as
	// the client gave them, before the canonical maps (from and rcpts
	// are mapped): what the restrictions and their reject lines see, as
	// Postfix's smtpd sees them before cleanup maps them.
	given, givenRcpt string
	rcpts            []string
	rcptDSN          [][2]string // NOTIFY, ORCPT per recipient
	timer            *time.Timer // transaction timeout
	timerMu          sync.Mutex
	creditEnd        atomic.Int64 // received() past which no octet earns time; 0: none

	upstream *upstreamConn // proxy mode only, from MAIL to the end of the transaction
	upMsg    *remote.Message
	upMsg0   []string // the recipients the upstream accepted, at DATA

	authID, authMech string
	// hold and discard are what the policy said for this transaction,
	// and why the reason for the mail log; filterTo is a FILTER action's
	// destination.
	hold, discard bool
	why           string
	filterTo      string
	// prepend are PREPEND actions' header fields, each once however many
	// recipients' checks asked for it; redirect and bcc are the access
	// tables' REDIRECT and BCC, applied with header_checks' own.
	prepend  []string
	redirect string
	bcc      []string
	// instance names the transaction to policy services.
	instance string
	msgID    string // the Message-ID, for the accept line; set once the text is read
	// lists keeps the DNS lists' answers about this client.
	lists policy.ListCache
}

func (ss *session) client() string { return ss.conn.Conn().RemoteAddr().String() }

// tlsState is the connection's TLS state: the command layer does TLS, so
// go-smtp's own view never has it.
func (ss *session) tlsState() (tls.ConnectionState, bool) {
	if ss.cc == nil {
		return tls.ConnectionState{}, false
	}
	return ss.cc.TLSState()
}

func (ss *session) Reset() {
	ss.stopTimer()
	ss.releaseUpstream()
	ss.from, ss.mailOpts, ss.rcpts, ss.rcptDSN, ss.upMsg = "", nil, nil, nil, nil
	ss.given, ss.givenRcpt = "", ""
	ss.hold, ss.discard, ss.why, ss.filterTo, ss.prepend = false, false, "", "", nil
	ss.redirect, ss.bcc = "", nil
}

func (ss *session) Logout() error {
	ss.stopTimer()
	ss.releaseUpstream()
	return nil
}

// releaseUpstream gives the upstream session back to the pool at the end of
// a transaction (go-smtp resets the session after the reply to the final
// dot, and at RSET, MAIL and disconnect); the pool says RSET first if the
// transaction was left open.
func (ss *session) releaseUpstream() {
	if ss.upstream != nil {
		if ss.upstream.inTx && ss.cc != nil {
			// The pool says RSET and waits for the upstream: the
			// client's reply (to the final dot, or QUIT's) goes out
			// first, not after it. (Logout may come from another
			// goroutine at shutdown: flushNow does not wait.)
			ss.cc.flushNow()
		}
		ss.s.upstreams.put(ss.upstream)
		ss.upstream = nil
	}
}

// keepActions keeps what a policy decision that let the command through
// asks of the message: HOLD, DISCARD (access(5): for the whole message)
// and a FILTER.
func (ss *session) keepActions(d policy.Decision) {
	switch d.Verdict {
	case policy.Hold:
		ss.hold, ss.why = true, cmp.Or(ss.why, strings.TrimPrefix(d.Rule+": "+cmp.Or(d.Text, "HOLD"), ": "))
	case policy.Discard:
		ss.discard, ss.why = true, strings.TrimPrefix(d.Rule+": "+cmp.Or(d.Text, "DISCARD"), ": ")
	}
	if d.Filter != "" {
		ss.filterTo = d.Filter
	}
	for _, h := range d.Prepend {
		if !slices.Contains(ss.prepend, h) {
			ss.prepend = append(ss.prepend, h)
		}
	}
	ss.redirect = cmp.Or(d.Redirect, ss.redirect)
	ss.bcc = append(ss.bcc, d.BCC...)
}

// heard tells the command layer that go-smtp handed the session the
// command: the session logs its refusal itself.
func (ss *session) heard() {
	if ss.cc != nil {
		ss.cc.heard = true
	}
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.heard()
	ss.Reset()
	if _, isTLS := ss.tlsState(); ss.s.opts.RequireTLS && !isTLS {
		return ss.refuse("mail", &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
			Message: "Must issue a STARTTLS command first"})
	}
	if ss.s.opts.RequireAuth && ss.authID == "" {
		return ss.refuse("mail", &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
			Message: "Authentication required"})
	}
	if !ascii(from) && (opts == nil || !opts.UTF8) {
		return ss.refuse("mail", errNeedUTF8)
	}
	if from != "" {
		// As for RCPT: go-smtp hands over a quoted local part
		// without its quotes ("a b"@example.com); it goes on re-quoted.
		addr, err := envelope.ParseUnquoted(from)
		if err != nil {
			return ss.refuse("mail", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7},
				Message: "Bad sender address syntax"})
		}
		if addr.Quoted {
			from = addr.String()
		}
	}
	ss.given = from
	if ss.cc != nil && ss.cc.bareSender != "" {
		// Restrictions and the reject lines see the sender as given
		// (reject_non_fqdn_sender refuses it); the spool, the qualified.
		ss.given = ss.cc.bareSender
	}
	if e := ss.overRate(anvil.Message); e != nil {
		return ss.refuse("mail", e, "from", maillog.Addr(ss.given), "rule", "client_message_rate_limit")
	}
	ss.instance = strconv.FormatInt(ss.s.started.Unix(), 16) + "." + strconv.FormatUint(ss.s.transactions.Add(1), 16)
	if ss.s.opts.Policy != nil {
		req := ss.request("")
		if opts != nil {
			req.Size = opts.Size
		}
		d := ss.s.opts.Policy.Check(ss.s.ctx, policy.StageMail, req)
		for _, w := range d.Warnings {
			ss.s.log.Info("policy warning", "client", ss.client(), "from", from, "warning", w)
		}
		if d.Refuses() {
			return ss.refuse("mail", &smtp.SMTPError{Code: d.Code, EnhancedCode: enhanced(d.Enhanced), Message: d.Text},
				"from", maillog.Addr(ss.given), "rule", d.Rule)
		}
		ss.keepActions(d)
	}
	ss.startTimer()
	from = ss.s.opts.Canonical.SenderAddr(from)
	ss.from, ss.mailOpts = from, opts
	if ss.s.opts.Proxy == nil {
		return nil
	}
	if ip := addrIP(ss.conn.Conn().RemoteAddr()); ss.s.opts.Bans != nil {
		// Banned since the connection began, or about to be: in proxy
		// mode its mail cannot be held, as it would be in the spool.
		if b, due := ss.s.opts.Bans.DueClient(ip, ss.knownName()); due {
			return ss.refuse("mail", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
				Message: ss.s.bannedText(ip, b)}, "from", maillog.Addr(ss.given))
		}
	}
	if err := ss.paused(); err != nil {
		return ss.refuse("mail", err, "from", maillog.Addr(ss.given), "rule", "pace")
	}
	ss.upMsg = &remote.Message{From: ss.s.opts.Canonical.GenericAddr(from)}
	if opts != nil {
		// What the client declared goes on as it said it: the
		// upstream sends the notices in proxy mode (RFC 3461 section
		// 4), and may refuse a size at MAIL.
		ss.upMsg.SMTPUTF8, ss.upMsg.EightBit = opts.UTF8, opts.Body == smtp.Body8BitMIME
		ss.upMsg.Size = opts.Size
		ss.upMsg.MailParams = remote.DSNMailParams(string(opts.Return), opts.EnvelopeID)
	}
	rep, err := ss.upstreamMail()
	if err != nil {
		ss.dropUpstream()
		var re *remote.Error
		if errors.As(err, &re) {
			// The upstream refused the relay's own session (its
			// greeting, STARTTLS, the relay's login): the enforcer
			// alerts the administrator where a rule says so, as the
			// scheduler's deliveries do. The client's reply is the
			// same whatever it decides: the fault is not the client's.
			ss.enforce(re.Stage, re.Reply, nil, "", "")
		}
		return ss.upstreamError(err, "mail", "from", maillog.Addr(from))
	}
	if rep.Code/100 == 2 {
		ss.upstream.inTx = true
	} else {
		ss.upMsg = nil
		ss.s.opts.MailLog.Reject(ss.client(), "mail", rep.String(), "from", maillog.Addr(from), "relay", ss.s.opts.Proxy.Addr)
		return replyError(ss.enforce("mail", rep, nil, "", ""))
	}
	return nil
}

// upstreamMail takes an upstream session and says MAIL on it. A session
// from the pool that turns out to be dead (the upstream closed it while it
// was idle: a network error or 421) is replaced by a fresh one, once, and
// MAIL said again: the client hears the fresh session's reply.
func (ss *session) upstreamMail() (reply.Reply, error) {
	up, err := ss.s.upstreams.get(ss.s.ctx)
	if err != nil {
		ss.s.log.Warn("upstream unavailable", "upstream", ss.s.opts.Proxy.Addr, "err", err)
		return reply.Reply{}, err
	}
	ss.upstream = up
	rep, err := ss.s.cuttable(up, func() (reply.Reply, error) { return up.Mail(ss.upMsg) })
	if !up.reused || (err == nil && rep.Code != 421) {
		return rep, err
	}
	ss.s.log.Debug("idle upstream session lost; dialling a fresh one", "upstream", ss.s.opts.Proxy.Addr, "err", err, "reply", rep.String())
	up.Close()
	ss.upstream = nil
	if up, err = ss.s.upstreams.dialFresh(ss.s.ctx); err != nil {
		ss.s.log.Warn("upstream unavailable", "upstream", ss.s.opts.Proxy.Addr, "err", err)
		return reply.Reply{}, err
	}
	ss.upstream = up
	return ss.s.cuttable(up, func() (reply.Reply, error) { return up.Mail(ss.upMsg) })
}

// enforce hands an upstream refusal to the enforcer, if any, and returns
// the reply the client is to hear; id and contentPath are the message's,
// "" before the final dot.
func (ss *session) enforce(stage string, rep reply.Reply, to []string, id, contentPath string) reply.Reply {
	if rep.Code < 400 || rep.Local {
		return rep // a local reply: the upstream never said it
	}
	if ss.s.opts.Pacer != nil {
		ss.s.opts.Pacer.Signal(stage, rep)
	}
	if ss.s.opts.Enforcer == nil {
		return rep
	}
	return ss.s.opts.Enforcer.ProxyRefusal(ss.s.ctx, &ProxyRefusal{ID: id,
		Client: addrIP(ss.conn.Conn().RemoteAddr()), ClientAddr: ss.client(), ClientName: ss.knownName(), Helo: ss.conn.Hostname(),
		AuthID: ss.authID, From: ss.from, To: to, Stage: stage, Reply: rep, ContentPath: contentPath,
		Relay: ss.s.opts.Proxy.Addr,
	})
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.heard()
	if !ascii(to) && (ss.mailOpts == nil || !ss.mailOpts.UTF8) {
		return ss.refuse("rcpt", errNeedUTF8)
	}
	// go-smtp hands over a quoted local part without its quotes; parse
	// it as such and send it on re-quoted.
	addr, err := envelope.ParseUnquoted(to)
	if err == nil && addr.Quoted {
		to = addr.String()
	}
	if err != nil {
		return ss.refuse("rcpt", &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3},
			Message: "Bad recipient address syntax"})
	}
	given := to
	if e := ss.overRate(anvil.Recipient); e != nil {
		return ss.refuse("rcpt", e, "from", maillog.Addr(ss.given), "to", maillog.Addr(to), "rule", "client_recipient_rate_limit")
	}
	// Postfix's smtpd_check_rcpt accepts a bare "postmaster" before any
	// restriction (RFC 5321 4.5.1): a refused client can still reach it.
	// After a DISCARD it checks no recipient: the message goes nowhere.
	if ss.s.opts.Policy != nil && (ss.cc == nil || !ss.cc.barePostmaster) && !ss.discard {
		d := ss.s.opts.Policy.Check(ss.s.ctx, policy.StageRcpt, ss.request(to))
		for _, w := range d.Warnings {
			ss.s.log.Info("policy warning", "client", ss.client(), "from", ss.given, "to", to, "warning", w)
		}
		switch d.Verdict {
		case policy.Reject, policy.Defer:
			ss.discard = ss.discard || d.Discarding
			return ss.refuse("rcpt", &smtp.SMTPError{Code: d.Code, EnhancedCode: enhanced(d.Enhanced), Message: d.Text},
				"from", maillog.Addr(ss.given), "to", maillog.Addr(to), "rule", d.Rule)
		case policy.Drop:
			ss.s.opts.MailLog.Reject(ss.client(), "rcpt", "421 4.7.0 connection dropped", "from", maillog.Addr(ss.given),
				"to", maillog.Addr(to), "rule", d.Rule)
			ss.conn.Conn().Close()
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "closing connection"}
		}
		ss.keepActions(d)
		if d.Address != "" {
			to = d.Address
		}
	}
	if srs := ss.s.opts.SRS; srs != nil {
		if orig, mine, err := srs.Reverse(to); err != nil {
			return ss.refuse("rcpt", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
				Message: "SRS address does not verify"}, "from", maillog.Addr(ss.given), "to", maillog.Addr(to), "rule", "srs")
		} else if mine {
			to = orig
		}
	}
	if len(ss.rcpts) == 0 {
		ss.givenRcpt = given
	}
	before := to
	to = ss.s.opts.Canonical.RecipientAddr(to)
	mapped := to != before
	var dsn [2]string
	if opts != nil {
		var n []string
		for _, v := range opts.Notify {
			n = append(n, string(v))
		}
		dsn[0] = strings.Join(n, ",")
		if opts.OriginalRecipient != "" {
			dsn[1] = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	if dsn[1] == "" && mapped && ascii(given) {
		// Mapped (canonical maps): the address the client gave is the
		// original recipient, for the upstream and for the relay's own
		// notices, as Postfix's smtp client sends ORCPT=rfc822;ORIG for
		// a recipient that cleanup rewrote.
		dsn[1] = "rfc822;" + given
	}
	if ss.s.opts.Proxy != nil {
		// The upstream session ended at an earlier RCPT: the
		// transaction is said again on a fresh one, unless that failed.
		var lost *reply.Reply
		if ss.upMsg == nil {
			r := upstreamFailure(nil, "session")
			lost = &r
		} else if ss.upstream == nil {
			lost = ss.resume("rcpt")
		}
		if lost != nil {
			ss.s.opts.MailLog.Reject(ss.client(), "rcpt", lost.String(), "from", maillog.Addr(ss.from), "to", maillog.Addr(to), "relay", ss.s.opts.Proxy.Addr)
			return replyError(*lost)
		}
		m := ss.upMsg
		up, orcpt := ss.s.opts.Canonical.GenericAddr(to), dsn[1]
		if up != to && orcpt == "" && ascii(given) {
			orcpt = "rfc822;" + given // as for a recipient the canonical maps changed
		}
		m.To, m.RcptParams = append(m.To, up), append(m.RcptParams, remote.DSNRcptParams(dsn[0], orcpt))
		rep, err := ss.s.cuttable(ss.upstream, func() (reply.Reply, error) { return ss.upstream.Rcpt(m, len(m.To)-1) })
		if err != nil || rep.Code/100 != 2 {
			m.To, m.RcptParams = m.To[:len(m.To)-1], m.RcptParams[:len(m.RcptParams)-1]
		}
		if err != nil {
			// The transaction goes on: the next RCPT, or DATA, says
			// it again on a fresh session (resume).
			ss.upstream.Close()
			ss.upstream = nil
			return ss.upstreamError(err, "rcpt", "from", maillog.Addr(ss.from), "to", maillog.Addr(to))
		}
		if rep.Code/100 != 2 {
			ss.s.opts.MailLog.Reject(ss.client(), "rcpt", rep.String(), "from", maillog.Addr(ss.from),
				"to", maillog.Addr(to), "relay", ss.s.opts.Proxy.Addr)
			return replyError(ss.enforce("rcpt", rep, []string{to}, "", ""))
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	ss.rcptDSN = append(ss.rcptDSN, dsn)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if pr, ok := r.(*io.PipeReader); ok && ss.cc != nil {
		// A BDAT transaction: see awaitChunkReader.
		ss.cc.chunkReader.Store(pr)
	} else if ss.cc != nil {
		if t := ss.cc.Text(); t != nil {
			// DATA: the text in blocks, not go-smtp's octet at a
			// time (text.go).
			r = t
		}
	}
	// aborted: go-smtp ended this BDAT transaction itself (RSET, EHLO,
	// the connection's end) and reset the session on its own goroutine,
	// timer included; by the time this one returns, the next
	// transaction may have started its own timer, which is not ours to
	// stop.
	aborted := false
	// The timer stops at the text's end: the client waits for the relay
	// then, and a cut would be a duplicate (endWatch).
	text := &endWatch{r: r, onEnd: ss.stopTimer}
	r = text
	defer func() {
		switch {
		case aborted:
		case text.ended:
			ss.stopTimer()
		default:
			// Refused before the end of the text (the size limit, a
			// storage failure): go-smtp reads the rest before it
			// answers and resets the transaction, timer included.
			// Until then the timer runs, and nothing earns more time.
			ss.endCredit()
		}
	}()
	now := ss.s.opts.Now()
	w, err := ss.newDraft(now)
	if err != nil {
		ss.s.log.Error("spool create failed", "err", err)
		return storageReply(err)
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()

	// RFC 3848: S for TLS, A for a login (ESMTPSA), as Postfix writes.
	proto := "ESMTP"
	switch {
	case ss.cc != nil && ss.cc.saidHelo:
		proto = "SMTP" // a client that said HELO, as Postfix writes it
	case ss.mailOpts != nil && ss.mailOpts.UTF8:
		proto = "UTF8SMTP" // RFC 6531 sections 3.7.3 and 4.3
	}
	var comments []string // Postfix's order: TLS, then the login
	if cs, isTLS := ss.tlsState(); isTLS {
		proto += "S"
		// Postfix's words for the version ("TLSv1.3", as docs/auth.md
		// shows), which Received parsers match; Go's are "TLS 1.3".
		protocol, _, _ := policy.PostfixTLS(cs)
		comments = append(comments, "using "+protocol+" with cipher "+tls.CipherSuiteName(cs.CipherSuite))
	}
	if ss.authID != "" {
		proto += "A"
		if ss.s.opts.AuthenticatedHeader { // smtpd_sasl_authenticated_header
			comments = append(comments, "Authenticated sender: "+sanitize(ss.authID))
		}
	}
	hdr := receivedHeader(ss.conn.Hostname(), ss.knownName(), ss.conn.Conn().RemoteAddr(), ss.s.opts.Domain, proto, w.ID(), comments, ss.rcpts, now)
	if len(ss.prepend) > 0 {
		// Postfix's smtpd writes PREPEND's header fields before its
		// Received header.
		hdr = strings.Join(ss.prepend, "\r\n") + "\r\n" + hdr
	}
	var checks headercheck.Result
	var cw *crlf.Writer
	origClient, origName := "", ""
	// Errors reading from the client are told apart from errors writing
	// to the spool: only the latter are a storage failure.
	if max := ss.s.opts.MaxMessageSize; max > 0 {
		r = &sizeLimit{r: r, left: max}
	}
	cr := &clientReader{r: r}
	r = cr
	if ss.s.opts.Reinject {
		r, origClient, origName = takeOriginalClient(r)
	}
	stamp := &headerStamp{id: w.ID(), domain: ss.s.opts.Domain, now: now}
	// dst is where the content goes: the draft, through the header's
	// address rewriting when there is one.
	var dst io.Writer = w
	var hw *rewrite.HeaderWriter
	if local := ss.rewritesHeaders(); local || ss.s.opts.Canonical.HasGeneric() {
		hw = &rewrite.HeaderWriter{W: w, C: ss.s.opts.Canonical, GenericOnly: !local}
		dst = hw
	}
	buf, _ := ss.s.copyBufs.Get().(*[copySize]byte)
	if buf == nil {
		buf = new([copySize]byte)
	}
	defer ss.s.copyBufs.Put(buf)
	if hc := ss.s.opts.HeaderChecks; hc != nil {
		checks, cw, err = ss.receiveChecked(hc, hdr, r, dst, stamp, buf[:])
	} else {
		stamp.w = dst
		cw = crlf.NewWriter(stamp)
		if _, err = io.WriteString(dst, hdr); err == nil {
			_, err = io.CopyBuffer(cw, r, buf[:])
		}
		if err == nil {
			err = closeContent(cw, stamp)
		}
	}
	if err == nil && hw != nil {
		err = hw.Close()
	}
	if cr.err != nil {
		aborted = errors.Is(cr.err, smtp.ErrDataReset)
		var se *smtp.SMTPError
		if errors.As(cr.err, &se) {
			// The size limit: go-smtp's own reply, after the dot.
			ss.s.opts.MailLog.Reject(ss.client(), "data", smtpErrorText(se), "from", maillog.Addr(ss.from))
			return se
		}
		return cr.err // the client went away; nobody hears a reply
	}
	if err != nil {
		return ss.storageError(err)
	}
	if stamp.tooManyHops() {
		return ss.refuse("data", tooManyHops, "from", maillog.Addr(ss.from))
	}
	ss.msgID = stamp.MessageID()
	for _, warn := range checks.Warnings {
		ss.s.log.Info("header_checks warning", "id", w.ID(), "client", ss.client(), "warning", warn)
	}
	for _, info := range checks.Info { // INFO, PASS and STRIP log what they matched, as cleanup(8) does
		ss.s.log.Info("header_checks info", "id", w.ID(), "client", ss.client(), "info", info)
	}
	for _, p := range checks.Problems {
		ss.s.log.Warn("header/body check result ignored", "id", w.ID(), "client", ss.client(), "problem", p)
	}
	switch checks.Verdict {
	case headercheck.Reject:
		text := checks.Text
		if ss.mailOpts == nil || !ss.mailOpts.UTF8 {
			// $1 may have put the sender's 8-bit octets in the text.
			text = asciiReply(text)
		}
		e := &smtp.SMTPError{Code: checks.Code, EnhancedCode: enhanced(checks.Enhanced), Message: text}
		rule := "header_checks"
		if strings.HasPrefix(checks.Match, "body ") {
			rule = "body_checks"
		}
		return ss.refuse("data", e, "from", maillog.Addr(ss.from), "rule", rule, "match", checks.Match)
	case headercheck.Discard, headercheck.Hold:
		// Postfix logs the match and the action's text.
		ss.discard, ss.hold = ss.discard || checks.Verdict == headercheck.Discard, ss.hold || checks.Verdict == headercheck.Hold
		ss.why = checks.Match
		if checks.Text != "" {
			ss.why += ": " + checks.Text
		}
	}
	if checks.Filter != "" {
		ss.filterTo = checks.Filter
	}
	if err := ss.endOfDataCheck(w.ID(), w.Size()); err != nil {
		return err
	}

	client := ss.client()
	if origClient != "" {
		client = origClient
	}
	env := &spool.Envelope{
		Filtered: ss.s.opts.Reinject,
		FilterTo: ss.filterTo,
		AuthID:   ss.authID,
		From:     ss.from,
		BodyType: "7bit",
		Client:   client,
		Helo:     ss.conn.Hostname(),
		Arrival:  now,
	}
	if env.ClientName = origName; !ss.s.opts.Reinject {
		env.ClientName = ss.knownName()
	}
	if cw.EightBit() {
		env.BodyType = "8bit"
	}
	if ss.mailOpts != nil {
		env.SMTPUTF8 = ss.mailOpts.UTF8
		env.EnvID = ss.mailOpts.EnvelopeID
		env.Ret = string(ss.mailOpts.Return)
		if ss.mailOpts.Body == smtp.BodyBinaryMIME {
			env.BodyType = "binarymime"
		}
	}
	for i, a := range ss.rcpts {
		r := spool.Recipient{Addr: a, Status: spool.Pending}
		if i < len(ss.rcptDSN) {
			r.Notify, r.ORCPT = ss.rcptDSN[i][0], ss.rcptDSN[i][1]
		}
		env.Recipients = append(env.Recipients, r)
	}
	// A recipient given twice goes once, with the notices either RCPT
	// asked for, as Postfix's cleanup drops duplicates.
	env.Recipients = spool.MergeDuplicates(env.Recipients)
	// The access tables' REDIRECT and BCC, then header_checks' (read
	// later, so its REDIRECT wins, as Postfix's cleanup's does).
	checks.Redirect = cmp.Or(checks.Redirect, ss.redirect)
	checks.BCC = append(slices.Clone(ss.bcc), checks.BCC...)
	// always_bcc, sender_bcc_maps, recipient_bcc_maps (Canonical is nil
	// on the reinject listener: added once, as Postfix does).
	checks.BCC = append(checks.BCC, ss.s.opts.Canonical.BCC(ss.from, ss.rcpts)...)
	if checks.Redirect != "" || len(checks.BCC) > 0 {
		if _, isProxy := w.(*proxyDraft); isProxy {
			// The upstream has the recipients already.
			ss.s.log.Warn("REDIRECT and BCC are not applied in proxy mode", "id", w.ID(),
				"redirect", checks.Redirect, "bcc", strings.Join(checks.BCC, ","))
		} else {
			env.Recipients = redirected(env.Recipients, checks)
			ss.s.log.Info("REDIRECT or BCC changed the recipients", "id", w.ID(), "client", ss.client(),
				"redirect", checks.Redirect, "bcc", strings.Join(checks.BCC, ","))
		}
	}
	if ss.discard {
		// DISCARD: the client hears success, nothing is kept (Postfix),
		// and nothing else sees the message: not the filters (copy:
		// would deliver it to the POP mailboxes), not the upstream.
		ss.s.opts.MailLog.Discard(w.ID(), ss.client(), ss.from, len(ss.rcpts), cmp.Or(ss.why, "discard action"), "")
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + w.ID()}
	}
	if env.Recipients, err = spool.ExpandRecipients(env.Recipients, ss.s.opts.Canonical.Expand); err != nil { // virtual_alias_maps
		// Postfix's cleanup: "message not accepted", for now.
		return ss.refuse("data", errVirtualLimit, "from", maillog.Addr(ss.from))
	}
	env.From, env.Recipients = ss.s.opts.Canonical.Generic(env.From, env.Recipients) // smtp_generic_maps
	if err := w.Prepare(env); errors.Is(err, spool.ErrEnvelopeTooLarge) {
		ss.s.log.Warn("message refused: its recipients, after virtual_alias_maps, make an envelope too large to keep",
			"id", w.ID(), "client", ss.client(), "recipients", len(env.Recipients), "err", err)
		return ss.refuse("data", errTooManyExpanded, "from", maillog.Addr(ss.from))
	} else if err != nil {
		return ss.storageError(err)
	}
	rescan := false
	if f := ss.s.opts.Filter; f != nil {
		res := f.Run(ss.s.ctx, w.ContentPath(), w.EnvelopePath())
		// A filter may have renamed a new content file into place, or
		// taken the message away (abandon).
		switch err := w.Relock(); {
		case err == nil:
		case !errors.Is(err, fs.ErrNotExist):
			return ss.storageError(err)
		case res.Outcome == filter.OK:
			res = filterTook(res)
		}
		if res.Outcome == filter.OK {
			res = checkFiltered(w.ContentPath(), w.EnvelopePath(), res)
		}
		if res.Outcome == filter.Abandon && res.Reason == filterTookReason {
			ss.s.log.Warn("a filter passed the message but took its files away; taken as abandoned (exit 100)",
				"id", w.ID(), "filter", f.String())
		}
		rescan = res.Rescan
		if res.Hold && res.Outcome == filter.OK {
			// A milter's quarantine: accepted, and kept held.
			ss.hold = true
			ss.s.log.Info("message quarantined by a filter", "id", w.ID(), "reason", res.Reason)
		}
		if k := ss.s.opts.KickOnRescan; rescan && k != nil && res.Outcome != filter.OK {
			// Exit 102 (abandon) and 104 (refuse) ask for a rescan too:
			// what waits in the spool goes now, whatever becomes of this
			// message.
			k.Kick(false)
		}
		switch res.Outcome {
		case filter.Reject, filter.TempFail:
			// The message goes (Data's deferred Abort); the client
			// keeps it and hears why.
			return ss.refuse("data", &smtp.SMTPError{Code: res.Code, EnhancedCode: enhanced(res.Enhanced), Message: res.Text},
				"from", maillog.Addr(ss.from), "rule", "filter "+f.String(), "reason", res.Reason)
		case filter.Abandon:
			// E-MailRelay: the client hears success and the message is
			// dropped; the filter has taken it over.
			ss.s.opts.MailLog.Abandon(w.ID(), ss.client(), ss.from, f.String())
			return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + w.ID()}
		}
	}

	if pd, isProxy := w.(*proxyDraft); isProxy {
		if f := ss.s.opts.Filter; f != nil {
			if what := proxyEnvelopeChange(w.EnvelopePath(), env); what != "" {
				ss.s.log.Error("a filter changed the "+what+" of a proxied message, which went upstream before it; refused: use store and forward (--forward-on-disconnect) for filters that re-address mail",
					"id", w.ID(), "filter", f.String())
				return ss.refuse("data", errProxyEnvelope, "from", maillog.Addr(ss.from), "rule", "filter "+f.String())
			}
		}
		if ss.hold {
			return ss.proxyHold(pd, env)
		}
		return ss.proxyData(pd, env)
	}
	if bans := ss.s.opts.Bans; bans != nil && !ss.hold {
		// Banned, or about to be (the ban delay): its mail would cost
		// the relay more reputation, as its queued mail would.
		if _, due := bans.DueClient(enforce.ClientIP(env.Client), env.ClientName); due {
			ss.hold, ss.why = true, "client banned"
		}
	}
	if err := w.Commit(ss.hold); err != nil {
		return ss.storageError(err)
	}
	ok = true
	if ss.hold {
		ss.s.opts.MailLog.Hold(w.ID(), ss.client(), ss.from, cmp.Or(ss.why, "held at receipt"))
	}
	if ss.tc != nil {
		ss.tc.messages.Add(1)
	}
	if env.Client != ss.client() {
		// Back from the content filter: the client that submitted it,
		// and where it came back from.
		ss.s.opts.MailLog.AcceptBack(w.ID(), env.Client, ss.from, len(ss.rcpts), w.Size(), ss.client(), ss.msgID)
	} else {
		ss.s.opts.MailLog.Accept(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), env.AuthID, ss.msgID)
	}
	if k := ss.s.opts.KickOnRescan; rescan && k != nil {
		k.Kick(false)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + w.ID()}
}

// proxyData sends the message upstream and answers the client with the
// upstream's reply. Nothing of it is kept: it was never acknowledged by us,
// only by the upstream.
func (ss *session) proxyData(w *proxyDraft, env *spool.Envelope) error {
	relay := ss.s.opts.Proxy.Addr
	body, size, err := w.Content()
	if err != nil {
		return ss.storageError(err)
	}
	if ss.upMsg == nil {
		// Lost at an RCPT, and not to be had again.
		rep := upstreamFailure(nil, "session")
		ss.s.opts.MailLog.Proxy(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), relay, maillog.Deferred, rep.String(), ss.msgID)
		return replyError(rep)
	}
	if ss.upstream == nil || ss.upstream.Broken() {
		if rep := ss.resume("data"); rep != nil {
			ss.s.opts.MailLog.Proxy(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), relay, maillog.Deferred, rep.String(), ss.msgID)
			return replyError(*rep)
		}
	}
	if err := ss.utf8Refusal(w); err != nil {
		return err // the upstream transaction is still open: the pool says RSET
	}
	eightBit := env.BodyType == "8bit"
	if _, offered := ss.upstream.Extension("8BITMIME"); eightBit && !offered {
		// As the store-and-forward path does: 8-bit leaves go encoded
		// (RFC 6152 section 3).
		r, n, stop, ok, err := eightbit.Converted(func() (io.ReadCloser, error) {
			r, _, err := w.Content()
			return io.NopCloser(r), err
		})
		if err != nil {
			return ss.storageError(err)
		}
		if ok {
			body, size, eightBit = r, n, false
			defer stop()
		}
	}
	ss.upMsg.Body = body
	ss.upMsg.Size = size
	ss.upMsg.EightBit = eightBit
	ss.upMsg0 = ss.upMsg.To
	rep, err := ss.s.cuttable(ss.upstream, func() (reply.Reply, error) { return ss.upstream.Data(ss.upMsg) })
	ss.upMsg = nil
	if err == nil && rep.Code/100 == 2 {
		// The transaction is over. After a refusal of DATA it is
		// still open, and the pool says RSET.
		ss.upstream.inTx = false
	}
	if err != nil {
		ss.dropUpstream()
		rep := upstreamFailure(err, "data")
		ss.s.opts.MailLog.Proxy(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), relay, maillog.Deferred, rep.String(), ss.msgID)
		return replyError(rep)
	}
	result := maillog.Sent
	switch {
	case rep.Temporary():
		result = maillog.Deferred
	case rep.Permanent():
		result = maillog.Bounced
	}
	if result == maillog.Sent && ss.tc != nil {
		ss.tc.messages.Add(1)
	}
	ss.s.opts.MailLog.Proxy(w.ID(), ss.client(), ss.from, len(ss.rcpts), w.Size(), relay, result, rep.String(), ss.msgID)
	if result == maillog.Sent {
		ss.relayedNotice(w, env, rep)
	}
	if rep.Code >= 400 {
		// The content file still exists here: the enforcer may copy it
		// (to encapsulate) before Data's deferred Abort removes it.
		heard := ss.enforce(ss.upstream.dataStage(), rep, ss.upMsg0, w.ID(), w.ContentPath())
		if heard.Code/100 == 2 && ss.tc != nil {
			ss.tc.messages.Add(1)
		}
		return replyError(heard)
	}
	return replyError(rep)
}

// relayedNotice queues, for an upstream that took the message without
// offering DSN, the "relayed" notice of each recipient it accepted whose
// NOTIFY asks for SUCCESS (RFC 3461 section 5.2.2.2), as store and
// forward does: the upstream got no NOTIFY to act on. The client has
// its 250 by then; a notice that cannot be queued is only logged.
func (ss *session) relayedNotice(w *proxyDraft, env *spool.Envelope, rep reply.Reply) {
	if ss.s.opts.Notices == nil || ss.upstream == nil {
		return
	}
	if _, dsn := ss.upstream.Extension("DSN"); dsn {
		return
	}
	host, _, err := net.SplitHostPort(ss.s.opts.Proxy.Addr)
	if err != nil {
		host = ss.s.opts.Proxy.Addr
	}
	var sent []spool.Recipient
	for _, r := range env.Recipients {
		if slices.Contains(ss.upMsg0, r.Addr) {
			r.Status, r.Reply, r.InReplyTo, r.RemoteMTA = spool.Sent, rep.Clip(reply.MaxKept).Account(), "end of DATA", host
			sent = append(sent, r)
		}
	}
	env.Recipients = sent
	content := func() (string, error) { return w.ContentPath(), w.err }
	if err := ss.s.opts.Notices.Notify(bounce.Success, env, content, sent); err != nil {
		ss.s.log.Error("delivery status notification not sent", "id", w.ID(), "err", err)
	}
}

// resume says the transaction again on a fresh upstream session when the
// one it was said on ended in the middle of it (at an RCPT, or while the
// client sent its text). It returns nil, or the reply for the client, the
// transaction then being over with the upstream.
func (ss *session) resume(stage string) *reply.Reply {
	rep, err := ss.reopenUpstream()
	if err == nil && rep.Code/100 == 2 {
		return nil
	}
	ss.dropUpstream()
	if err != nil {
		rep = upstreamFailure(err, stage)
	}
	return &reply.Reply{Code: 451, Enhanced: "4.4.1", Lines: []string{"4.4.1 upstream session lost; the transaction said again: " + rep.String()}}
}

// reopenUpstream says the transaction again on a fresh upstream session,
// MAIL and the recipients the upstream accepted, when the one it was said
// on ended while the client sent its text: an upstream's idle timeout
// (Postfix's smtpd_timeout, 300 s) is shorter than a big message over a
// slow link takes, and without this such a message could never pass. It
// returns the first reply that is not 2xx, or the last one.
func (ss *session) reopenUpstream() (reply.Reply, error) {
	ss.s.log.Info("upstream session lost in the middle of a transaction; saying it again",
		"client", ss.client(), "upstream", ss.s.opts.Proxy.Addr)
	m := ss.upMsg // dropUpstream ends the transaction with the session
	ss.dropUpstream()
	up, err := ss.s.upstreams.dialFresh(ss.s.ctx)
	if err != nil {
		return reply.Reply{}, err
	}
	ss.upstream, ss.upMsg = up, m
	rep, err := up.Mail(m)
	if err != nil || rep.Code/100 != 2 {
		return rep, err
	}
	up.inTx = true
	for i := range m.To {
		if rep, err = up.Rcpt(m, i); err != nil || rep.Code/100 != 2 {
			return rep, err
		}
	}
	return rep, nil
}

func (ss *session) dropUpstream() {
	if ss.upstream != nil {
		ss.upstream.Close()
		ss.upstream = nil
	}
	ss.upMsg = nil
}

// upstreamError is the reply for an upstream that could not be talked to
// at MAIL or RCPT, logged as a proxy rejection is, with kv (the sender and
// recipient) and the upstream.
func (ss *session) upstreamError(err error, stage string, kv ...string) error {
	rep := upstreamFailure(err, stage)
	ss.s.opts.MailLog.Reject(ss.client(), stage, rep.String(), append(kv, "relay", ss.s.opts.Proxy.Addr)...)
	if remote.OwnCredentials(err) && ss.s.credentialsAlertDue() {
		// The relay's own set-up is at fault: alert, as the scheduler does.
		ss.s.opts.MailLog.DestinationAlert(ss.s.opts.Proxy.Addr, ss.s.opts.Proxy.Addr, rep.String())
	}
	return replyError(rep)
}

// upstreamFailure is the reply for an upstream that could not be talked to:
// its own reply if it gave one, else a temporary local one. Never a 250.
func upstreamFailure(err error, stage string) reply.Reply {
	var re *remote.Error
	if errors.As(err, &re) {
		if rep := re.AsReply(); rep.Code/100 != 2 {
			return rep
		}
	}
	return reply.Reply{Code: 451, Enhanced: "4.4.1", Lines: []string{"4.4.1 upstream " + stage + " failed"}}
}

func (ss *session) storageError(err error) error {
	rep := storageReply(err)
	ss.s.log.Error("spool write failed; message refused", "client", ss.client(), "reply", rep.Code, "err", err)
	// The reply as the client heard it (one value from the wire to the log).
	ss.s.opts.MailLog.Reject(ss.client(), "data", smtpErrorText(rep), "from", maillog.Addr(ss.from))
	return rep
}

// replyError makes an upstream reply into what go-smtp writes back, line for
// line, with the upstream's own codes. The relay offers ENHANCEDSTATUSCODES,
// so every line of a 2xx, 4xx or 5xx reply it sends carries one (RFC 2034
// section 3); an upstream that sent none, or one of another class than its
// reply code, gets one in front of each line that lacks it: the first
// line's, or else the generic X.0.0 that go-smtp gives the relay's own
// replies.
func replyError(rep reply.Reply) error {
	// The lines are printable already: reply.Add makes every control
	// octet '?' as Postfix's smtp client does, so no bare CR reaches the
	// client to end a line early and forge a reply to its next command.
	lines := slices.Clone(rep.Lines)
	if len(lines) == 0 {
		lines = []string{""}
	}
	if class := byte('0' + rep.Code/100); class == '2' || class == '4' || class == '5' {
		code := rep.Enhanced
		if code == "" || code[0] != class {
			code = string(class) + ".0.0"
		}
		fixed := make([]string, len(lines))
		for i, l := range lines {
			if _, ok := reply.EnhancedCode(l); ok && l[0] == class {
				fixed[i] = l
				continue
			}
			fixed[i] = strings.TrimRight(code+" "+l, " ")
		}
		lines = fixed
	}
	return &smtp.SMTPError{Code: rep.Code, EnhancedCode: smtp.NoEnhancedCode, Message: strings.Join(lines, "\n")}
}

// refuse logs a refused command and returns its reply. The command layer
// counts it towards the hard error limit.
func (ss *session) refuse(stage string, e *smtp.SMTPError, kv ...string) error {
	ss.s.opts.MailLog.Reject(ss.client(), stage, smtpErrorText(e), kv...)
	return e
}

// errVirtualLimit refuses a message whose recipients virtual_alias_maps
// expands past Postfix's limits (a loop in the tables), as Postfix's
// cleanup does, or through an entry that is no list of addresses (a table
// changed while the relay runs), for now: the administrator fixes the
// tables.
var errVirtualLimit = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "Error: virtual alias expansion failed; try again later"}

// errTooManyExpanded refuses a message whose recipients, as
// virtual_alias_maps expands them, make an envelope past
// spool.MaxAcceptedEnvelope: sent again as it is, it fails again.
var errTooManyExpanded = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3},
	Message: "Error: too many recipients after alias expansion; send to fewer at a time"}

// errNeedUTF8 refuses an address with 8-bit characters in a transaction
// that did not declare SMTPUTF8 (RFC 6531 section 3.4).
var errNeedUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7},
	Message: "Must declare SMTPUTF8 to send unicode address"}

func smtpErrorText(e *smtp.SMTPError) string {
	if e.EnhancedCode == smtp.NoEnhancedCode || e.EnhancedCode == smtp.EnhancedCodeNotSet {
		return fmt.Sprintf("%d %s", e.Code, strings.ReplaceAll(e.Message, "\n", " "))
	}
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
}

func enhanced(s string) smtp.EnhancedCode {
	c, ok := reply.EnhancedCode(s)
	if !ok {
		return smtp.EnhancedCodeNotSet
	}
	return smtp.EnhancedCode(c)
}

// knownName is the client's confirmed host name, "" if it has none.
func (ss *session) knownName() string {
	if n := ss.tc.clientName(); n != "unknown" {
		return n
	}
	return ""
}

func (ss *session) request(rcpt string) *policy.Request {
	cs, isTLS := ss.tlsState()
	r := &policy.Request{
		ClientIP:   addrIP(ss.conn.Conn().RemoteAddr()),
		ClientAddr: ss.client(),
		ClientName: ss.knownName(),
		Helo:       ss.conn.Hostname(),
		AuthID:     ss.authID,
		AuthMech:   ss.authMech,
		TLS:        isTLS,
		Sender:     ss.given,
		Recipient:  rcpt,
		Instance:   ss.instance,
		Lists:      &ss.lists,
		// At RCPT, those accepted before this one.
		RecipientCount: len(ss.rcpts),
		ProtocolName:   "ESMTP",
		ServerAddr:     ss.conn.Conn().LocalAddr().String(),
	}
	if ss.cc != nil {
		if ss.cc.saidHelo {
			r.ProtocolName = "SMTP"
		}
		r.IllPipelining = ss.cc.illPipelining
	}
	if ss.mailOpts != nil {
		r.Size = ss.mailOpts.Size
	}
	if ss.tc != nil {
		r.ReverseName, r.NameTempFail = ss.tc.reverseName()
	}
	if isTLS {
		r.TLSProtocol, r.TLSCipher, r.TLSKeySize = policy.PostfixTLS(cs)
		r.CertFingerprint, r.PubKeyFingerprint, r.CertCN, r.CertIssuerCN, r.CertVerified = ss.s.clientCert(cs)
	}
	return r
}

// AuthMechanisms and Auth make the session an smtp.AuthSession when the
// server has an Authenticator.
func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Auth == nil {
		return nil
	}
	_, isTLS := ss.tlsState()
	if !isTLS && (ss.s.opts.RequireTLS || !ss.s.opts.AllowInsecureAuth) {
		return nil
	}
	return ss.s.opts.Auth.Mechanisms(isTLS)
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.Auth == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	if ss.authID != "" {
		return nil, &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Already authenticated"}
	}
	if _, isTLS := ss.tlsState(); !isTLS && ss.s.opts.RequireTLS {
		// RFC 3207 section 4: what every command but EHLO, NOOP, STARTTLS
		// and QUIT hears, as from Postfix at security level encrypt.
		return nil, &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	} else if !isTLS && !ss.s.opts.AllowInsecureAuth {
		return nil, &smtp.SMTPError{Code: 523, EnhancedCode: smtp.EnhancedCode{5, 7, 10}, Message: "TLS is required"}
	}
	ip := addrIP(ss.conn.Conn().RemoteAddr())
	if t := ss.s.opts.Throttle; t != nil && !t.Allow(ip) {
		return nil, ss.throttled()
	}
	srv, err := ss.s.opts.Auth.Server(mech, func(id string) {
		ss.authID, ss.authMech = id, mech
	})
	if err != nil {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return &countingSASL{Server: srv, ss: ss, ip: ip, mech: mech}, nil
}

// throttled logs and returns the refusal of a login from an address that
// failed too often.
func (ss *session) throttled() error {
	e := &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many authentication failures; try again later"}
	ss.s.opts.MailLog.Reject(ss.client(), "auth", smtpErrorText(e))
	return e
}

// countingSASL tells the throttle and the mail log how a login ended.
type countingSASL struct {
	sasl.Server
	ss   *session
	ip   netip.Addr
	mech string
}

func (c *countingSASL) Next(resp []byte) ([]byte, bool, error) {
	t := c.ss.s.opts.Throttle
	// One step at a time per address, and checked against the limit
	// again: a step may be the one that checks the password, and the
	// limit may have been reached since AUTH was let in.
	if t != nil {
		defer t.Serialize(c.ip)()
		if !t.Allow(c.ip) {
			return nil, false, c.ss.throttled()
		}
	}
	chal, done, err := c.Server.Next(resp)
	switch {
	case err != nil:
		if t != nil {
			var tried interface{ LoginUser() string }
			user := ""
			if errors.As(err, &tried) {
				user = tried.LoginUser()
			}
			t.Fail(c.ip, user)
		}
		c.ss.s.opts.MailLog.Reject(c.ss.client(), "auth", smtpErrorText(smtp.ErrAuthFailed), "mech", c.mech)
		// One reply for every failure, whatever went wrong, so that it
		// tells an attacker nothing (unknown user and bad password alike).
		err = smtp.ErrAuthFailed
	case done:
		if t != nil {
			t.Succeed(c.ip, c.ss.authID)
		}
		c.ss.s.opts.MailLog.Auth(c.ss.client(), c.mech, c.ss.authID)
	}
	return chal, done, err
}

// receiveChecked streams the message through header and body checks on its
// way to the spool: our Received header and the client's content (line
// endings made CRLF) go into a pipe, and the checks write what is kept.
func (ss *session) receiveChecked(hc *headercheck.Checks, hdr string, r io.Reader, w io.Writer, stamp *headerStamp, buf []byte) (headercheck.Result, *crlf.Writer, error) {
	pr, pw := io.Pipe()
	stamp.w = pw
	cw := crlf.NewWriter(stamp)
	go func() {
		_, err := io.WriteString(pw, hdr)
		if err == nil {
			_, err = io.CopyBuffer(cw, r, buf)
		}
		if err == nil {
			err = closeContent(cw, stamp)
		}
		pw.CloseWithError(err)
	}()
	res, err := hc.Apply(pr, w)
	// Drain what the checks did not read, so the writer goroutine ends
	// and the client's data is consumed.
	io.Copy(io.Discard, pr)
	pr.Close()
	return res, cw, err
}
