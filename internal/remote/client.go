package remote

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// TLSMode says how the client uses TLS with the server.
type TLSMode int

const (
	// TLSNone never starts TLS.
	TLSNone TLSMode = iota
	// TLSOpportunistic uses STARTTLS when the server offers it.
	TLSOpportunistic
	// TLSRequired fails, temporarily, when the server offers no STARTTLS.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit
)

// Authenticator logs in to a server; *auth.ClientLogin is one.
type Authenticator interface {
	// Client returns the SASL client for one of the mechanisms the
	// server offers (EHLO's AUTH keyword), or an error if none will do:
	// the attempt then fails, temporarily (the relay's own set-up, or
	// the server's, is to be fixed; Postfix defers too).
	Client(mechs []string) (sasl.Client, error)
}

// RefusalListener is a SASL client that is told when the server refused
// its login with a 5xx: an OAuth 2 client drops its cached token, which a
// server may refuse at once (535) without a challenge first.
type RefusalListener interface{ Refused() }

// Options configure a connection. The zero value connects in plain text with
// EHLO "localhost" and generous timeouts.
type Options struct {
	// Helo is the name sent in EHLO.
	Helo string
	// LocalAddr, if set, is the address to connect from.
	LocalAddr net.Addr
	// ConnectTimeout bounds connecting, and reading the greeting
	// unless GreetingTimeout is set.
	ConnectTimeout time.Duration
	// GreetingTimeout bounds the wait for the greeting once connected
	// (E-MailRelay's --prompt-timeout), after which EHLO goes ahead
	// without it; zero leaves it to ConnectTimeout, which fails Dial.
	GreetingTimeout time.Duration
	// ResponseTimeout bounds the wait for each reply and each write; in
	// the message text, each write's progress (Postfix's
	// smtp_data_xfer_timeout), not the whole text, which may take longer
	// on a slow link.
	ResponseTimeout time.Duration
	// DataTimeout bounds the wait for the reply to the final dot; zero
	// means ten minutes (RFC 5321 section 4.5.3.2.6).
	DataTimeout time.Duration
	TLS         TLSMode
	TLSConfig   *tls.Config
	// Auth, if set, logs in after TLS.
	Auth Authenticator
	// FailOn5xxGreeting makes a 5xx greeting a permanent failure, which
	// fails the mail (Postfix's smtp_skip_5xx_greeting = no). By default
	// it is temporary, as in Postfix: the next host is tried, and the
	// mail waits when there is none. A smarthost that greets the relay
	// with 554 (its address not allowed, a blocklist, a set-up being
	// changed) refuses the relay, not the message.
	FailOn5xxGreeting bool
	// Myself, if set, is the relay's own name: a server that answers EHLO
	// or HELO with it is the relay itself, and Dial fails with ErrLoop
	// (Postfix's "host X replied to HELO/EHLO with my own hostname").
	Myself string
	// Trace, if set, sees every command sent ("> ") and reply line
	// received ("< "), for Postfix-style debug_peer_list; AUTH exchanges
	// are shown without their secrets.
	Trace func(dir, line string)
}

// Conn is one SMTP session with a server. It is not safe for concurrent use.
type Conn struct {
	opts   Options
	addr   string
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	ext    map[string]string
	Greet  reply.Reply
	tls    bool
	broken bool
	inAuth bool // between AUTH and its final reply: responses are secrets
	// lateGreet: no greeting came within GreetingTimeout, and EHLO went
	// ahead without it; a greeting that comes late precedes EHLO's reply.
	lateGreet bool
	dot       dotWriter // sendBody's, its buffer kept for the next message
	// inText: sendBody is writing the message text; each write gets
	// ResponseTimeout to go out.
	inText bool
	// ahead is a transaction begun behind the last message's final dot
	// (SendAhead), waiting for the Send whose commands it holds.
	ahead *ahead
	// peeked: Broken has looked for unasked octets since the last read
	// and the last write, and found none.
	peeked bool
	// dataRefused: the last Data's DATA command was refused (no 354), so
	// its content never went.
	dataRefused bool
	// ctx is the context of the Dial or SendAhead under way (deadline).
	ctx context.Context
}

// sendWatch is the connection as the write buffer sees it: whatever goes
// out makes the last look for unasked octets stale, since the server may
// answer what it was sent.
type sendWatch struct{ c *Conn }

func (w sendWatch) Write(p []byte) (int, error) {
	w.c.peeked = false
	if !w.c.inText {
		return w.c.nc.Write(p)
	}
	n := 0
	for n < len(p) {
		m := min(len(p)-n, 64<<10)
		w.c.deadline(w.c.nc.SetWriteDeadline, time.Now().Add(w.c.opts.ResponseTimeout))
		m, err := w.c.nc.Write(p[n : n+m])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ahead is a transaction whose MAIL, RCPT and DATA went out in one group
// with the previous message's content and final dot, which RFC 2920
// section 3.1 allows ("the actual transfer of message content is
// explicitly allowed to be the first command in a group"). Its replies
// have been read; on 354 the server waits for its content.
type ahead struct {
	lines []string // the commands as sent, DATA last
	res   Result   // Mail, Rcpt; Data is the reply to DATA
	// err ends a group whose replies were read only in part: a 421
	// and the server gone. What was read is the next message's.
	err error
}

// errAbandoned ends a session whose server waits for content that no
// message will bring.
// ErrLoop is Dial's error when the server answered EHLO or HELO with
// Options.Myself: the mail would loop back to the relay.
var ErrLoop = errors.New("server replied to HELO/EHLO with my own hostname")

var errAbandoned = errors.New("a transaction begun ahead was not the next message's; session closed")

// Dial connects to addr ("host:port"), reads the greeting and says EHLO
// (HELO if EHLO is refused), then STARTTLS and AUTH as opts say.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 40 * time.Second
	}
	if opts.ResponseTimeout == 0 {
		opts.ResponseTimeout = 5 * time.Minute
	}
	if opts.DataTimeout == 0 {
		opts.DataTimeout = 10 * time.Minute
	}
	if err := useAccount(ctx, &opts); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: opts.ConnectTimeout, LocalAddr: opts.LocalAddr}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Stage: "connect", Err: err}
	}
	c := &Conn{opts: opts, addr: addr, ctx: ctx}
	defer func() { c.ctx = nil }()
	if opts.TLS == TLSImplicit {
		tc := tls.Client(nc, c.tlsConfig())
		tc.SetDeadline(time.Now().Add(opts.ConnectTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, &Error{Stage: "tls handshake", Err: err}
		}
		nc = tc
		c.tls = true
	}
	c.setConn(nc)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()

	if opts.GreetingTimeout > 0 && c.noGreeting(ctx) {
		// E-MailRelay's --prompt-timeout: without a greeting by then, the
		// dialogue goes ahead without it (hello skips a late one).
		c.lateGreet = true
	} else {
		// A ctx that ended while noGreeting waited is not waited out
		// again: readReply's deadline would replace the one its end set.
		if err = ctx.Err(); err == nil {
			c.Greet, err = c.readReply(cmp.Or(opts.GreetingTimeout, opts.ConnectTimeout))
		}
		if err != nil {
			c.nc.Close()
			return nil, &Error{Stage: cmp.Or(tlsAlert(err), "greeting"), Err: err}
		}
	}
	if !c.lateGreet && c.Greet.Code != 220 {
		c.Close()
		return nil, &Error{Stage: "greeting", Reply: c.Greet, Perm: c.Greet.Permanent() && opts.FailOn5xxGreeting}
	}
	if err := c.hello(); err != nil {
		c.Close()
		return nil, err
	}
	if _, ok := c.ext["STARTTLS"]; ok && !c.tls && (opts.TLS == TLSOpportunistic || opts.TLS == TLSRequired) {
		if err := c.startTLS(ctx); err != nil {
			switch c.plainFallback(ctx, err) {
			case goOnPlain:
				delete(c.ext, "STARTTLS")
			case redialPlain:
				c.Close()
				opts.TLS = TLSNone
				return Dial(ctx, addr, opts)
			default:
				c.Close()
				return nil, err
			}
		}
	} else if opts.TLS == TLSRequired && !c.tls {
		c.Close()
		return nil, &Error{Stage: "starttls", Err: errNoStartTLS(opts.Auth != nil)}
	}
	if opts.Auth != nil {
		if err := c.auth(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// setConn sets the connection and its buffers. The write buffer is sized
// for the memory of many sessions kept open at once (the proxy keeps one
// per busy client): commands are short; message text in memory comes in
// large writes, which bufio passes on whole once the buffer is empty, and
// text from a file is read into the buffer, 16 KiB a write.
func (c *Conn) setConn(nc net.Conn) {
	c.nc = nc
	c.r = bufio.NewReaderSize(nc, 4096)
	c.w = bufio.NewWriterSize(sendWatch{c}, 16<<10)
}

func (c *Conn) tlsConfig() *tls.Config {
	cfg := c.opts.TLSConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(c.addr)
		cfg.ServerName = host
	}
	return cfg
}

// heloName is the name EHLO and HELO give: Options.Helo if it is a dotted
// domain or an address literal, else (an unqualified host name such as
// "vm", "localhost", or none) the connection's local address as a literal,
// as E-MailRelay does: RFC 5321 (4.1.1.1) wants one or the other, and
// servers refuse a bare host name.
func (c *Conn) heloName() string {
	name := c.opts.Helo
	if strings.Contains(strings.Trim(name, "."), ".") || strings.HasPrefix(name, "[") {
		return name
	}
	return addressLiteral(c.nc.LocalAddr())
}

// addressLiteral is ip as RFC 5321 writes it in EHLO: [192.0.2.1], or
// [IPv6:2001:db8::1].
func addressLiteral(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP == nil {
		return "localhost"
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return "[" + ip4.String() + "]"
	}
	return "[IPv6:" + ta.IP.String() + "]"
}

func (c *Conn) hello() error {
	helo := c.heloName()
	rep, err := c.cmd("EHLO " + helo)
	if err == nil && c.lateGreet && rep.Code == 220 {
		// The greeting came after --prompt-timeout: EHLO's reply follows it.
		c.Greet = rep
		rep, err = c.readReply(c.opts.ResponseTimeout)
	}
	c.lateGreet = false
	if err != nil {
		return &Error{Stage: "ehlo", Err: err}
	}
	if rep.Code == 250 {
		if err := c.myself(rep); err != nil {
			return err
		}
		c.ext = map[string]string{}
		for _, l := range rep.Lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(k)] = v
		}
		return nil
	}
	if rep, err = c.cmd("HELO " + helo); err != nil {
		return &Error{Stage: "helo", Err: err}
	}
	if rep.Code != 250 {
		return &Error{Stage: "helo", Reply: rep, Perm: rep.Permanent()}
	}
	if err := c.myself(rep); err != nil {
		return err
	}
	c.ext = map[string]string{}
	return nil
}

// myself fails with ErrLoop when a 250 reply to EHLO or HELO starts with
// Options.Myself.
func (c *Conn) myself(rep reply.Reply) error {
	if c.opts.Myself == "" || len(rep.Lines) == 0 {
		return nil
	}
	name, _, _ := strings.Cut(strings.TrimSpace(rep.Lines[0]), " ")
	if strings.EqualFold(strings.TrimSuffix(name, "."), strings.TrimSuffix(c.opts.Myself, ".")) {
		return &Error{Stage: "ehlo", Err: ErrLoop}
	}
	return nil
}

func (c *Conn) startTLS(ctx context.Context) error {
	rep, err := c.cmd("STARTTLS")
	if err != nil {
		return &Error{Stage: "starttls", Err: err}
	}
	if rep.Code != 220 {
		return &Error{Stage: "starttls", Reply: rep}
	}
	// Anything the server sent after its 220 was sent before the
	// handshake and must not be read as if it came over TLS (CVE-2011-0411
	// and its client-side twin).
	if c.r.Buffered() > 0 {
		return &Error{Stage: "starttls", Err: errors.New("server sent data after 220 before the TLS handshake")}
	}
	tc := tls.Client(c.nc, c.tlsConfig())
	tc.SetDeadline(time.Now().Add(c.opts.ConnectTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return &Error{Stage: "tls handshake", Err: err}
	}
	c.deadline(tc.SetDeadline, time.Time{})
	c.setConn(tc)
	c.tls = true
	err = c.hello()
	if re := (*Error)(nil); errors.As(err, &re) && re.Reply.Code == 0 && tlsAlert(err) != "" {
		re.Stage = tlsAlert(err) // for the "may" level's plain-text fallback too
	}
	return err
}

// tlsAlert is "tls handshake" when err is a TLS alert from the server. With
// TLS 1.3 a server that refuses the handshake (it wants a client
// certificate, or one it trusts) sends its alert after the client's side is
// done, so it comes at the first read: the EHLO reply after STARTTLS, the
// greeting on an implicit-TLS port. It is still a failed handshake.
func tlsAlert(err error) string {
	if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op == "remote error" {
		return "tls handshake"
	}
	return ""
}

// What Dial does when STARTTLS fails.
const (
	giveUp      = iota // the attempt fails
	goOnPlain          // the session goes on in plain text
	redialPlain        // a new session in plain text
)

// plainFallback is Postfix's "may" level (smtp_tls_security_level = may):
// a server that refuses STARTTLS gets the mail in plain text in the same
// session, one whose handshake fails in a new plain-text session. Only
// when TLS is opportunistic and the certificate is not checked, so not
// for --client-tls-verify (the server's certificate is then what
// matters), and never with credentials, even under --client-tls-verify
// <none>. A server that pushed text ahead of the handshake
// (CVE-2011-0411), or said 421, gets nothing.
func (c *Conn) plainFallback(ctx context.Context, err error) int {
	var re *Error
	if tc := c.tlsConfig(); c.opts.TLS != TLSOpportunistic || !tc.InsecureSkipVerify || tc.VerifyConnection != nil || c.opts.Auth != nil ||
		ctx.Err() != nil || !errors.As(err, &re) {
		return giveUp
	}
	switch {
	case re.Stage == "starttls" && re.Reply.Code != 0 && re.Reply.Code != 421 && !c.broken:
		return goOnPlain
	case re.Stage == "tls handshake":
		return redialPlain
	}
	return giveUp
}

func (c *Conn) auth() error {
	var mechs []string
	if v, ok := c.ext["AUTH"]; ok {
		mechs = strings.Fields(strings.ToUpper(v))
	}
	mech, err := c.authWith(mechs)
	var re *Error
	if mech == "CRAM-MD5" && errors.As(err, &re) && (re.Reply.Code == 535 || re.Reply.Code == 504) && !c.broken {
		// A server may offer CRAM-MD5 and be unable to do it for the
		// account (its passwords are hashed): the next mechanism
		// gets one try, as E-MailRelay's client does. Not PLAIN after
		// LOGIN or the other way: they check the same password, and
		// each failure counts against the relay at the server.
		rest := slices.DeleteFunc(slices.Clone(mechs), func(m string) bool { return m == "CRAM-MD5" })
		if next, err2 := c.authWith(rest); next != "" {
			return err2
		}
	}
	return err
}

// authWith logs in with the mechanism the Authenticator picks from mechs,
// and returns it ("" when none will do).
func (c *Conn) authWith(mechs []string) (string, error) {
	sc, err := c.opts.Auth.Client(mechs)
	if err != nil {
		return "", &Error{Stage: "auth", Err: err}
	}
	mech, ir, err := sc.Start()
	if err != nil {
		return "", &Error{Stage: "auth", Err: err}
	}
	return mech, c.exchange(sc, mech, ir)
}

// exchange runs one AUTH exchange.
func (c *Conn) exchange(sc sasl.Client, mech string, ir []byte) error {
	line := "AUTH " + mech
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "="
		}
		line += " " + enc
	}
	c.inAuth = true
	defer func() { c.inAuth = false }()
	rep, err := c.cmd(line)
	for err == nil && rep.Code == 334 {
		var chal []byte
		if len(rep.Lines) > 0 {
			chal, _ = base64.StdEncoding.DecodeString(rep.Lines[0])
		}
		resp, serr := sc.Next(chal)
		if serr != nil {
			c.cmd("*")
			return &Error{Stage: "auth", Err: serr}
		}
		rep, err = c.cmd(base64.StdEncoding.EncodeToString(resp))
	}
	if err != nil {
		return &Error{Stage: "auth", Err: err}
	}
	if rep.Code != 235 {
		if r, ok := sc.(RefusalListener); ok && rep.Permanent() {
			r.Refused()
		}
		// Never permanent for the message: it is the relay's own
		// credentials that are wrong, and mail waits until they are
		// fixed (Postfix soft-bounces here too).
		return &Error{Stage: "auth", Reply: rep}
	}
	return nil
}

// Extension reports whether the server offered an EHLO keyword, and its
// parameters.
func (c *Conn) Extension(name string) (string, bool) {
	v, ok := c.ext[strings.ToUpper(name)]
	return v, ok
}

// TLS reports whether the session is encrypted.
func (c *Conn) TLS() bool { return c.tls }

// Addr is the server's address as dialled.
func (c *Conn) Addr() string { return c.addr }

// RemoteAddr is the server's address as connected.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Waiting reports whether a transaction begun ahead (SendAhead) waits
// for its message: the session then carries only that message, and
// anything else closes it.
func (c *Conn) Waiting() bool { return c.ahead != nil && c.ahead.res.Data.Code == 354 }

// Answered reports whether the session holds replies to a transaction
// begun ahead (SendAhead) for the next Send to take, even when it is
// Broken: a 421 to the next message's MAIL is that message's reply.
func (c *Conn) Answered() bool { return c.ahead != nil }

// Broken reports that the session can carry no more messages: it failed,
// or the server said 421, or it has sent what no command asked for yet (a
// reply ahead of its command, the end of the connection). Such octets
// would be read as the reply to the next command, and every reply after
// it as the one to the command before: a refusal taken for MAIL's reply,
// a 250 for DATA's. Broken is called between transactions, when nothing
// may be on its way; the check is one non-blocking peek at the socket.
func (c *Conn) Broken() bool {
	if !c.broken && !c.peeked {
		// Once between two reads, or a read and a write: nothing
		// the session says comes without one.
		c.peeked = true
		c.broken = c.unsolicited()
	}
	return c.broken
}

// Failed is Broken without a look at the socket (for a session put aside).
func (c *Conn) Failed() bool { return c.broken }

// Close ends the connection without QUIT.
func (c *Conn) Close() error { return c.nc.Close() }

// Quit says QUIT, politely, and closes. A server waiting for content
// begun ahead would take QUIT for content: the session is only closed,
// and the server, with no final dot, delivers nothing.
func (c *Conn) Quit() {
	if !c.broken && !c.Waiting() {
		c.nc.SetDeadline(time.Now().Add(5 * time.Second))
		c.cmd("QUIT")
	}
	c.nc.Close()
}

func (c *Conn) writeLine(s string) error {
	if c.opts.Trace != nil {
		shown := s
		if strings.HasPrefix(strings.ToUpper(s), "AUTH ") || c.inAuth {
			shown = "(authentication data hidden)"
		}
		c.opts.Trace(">", shown)
	}
	if c.w.Available() < len(s)+2 {
		// The buffer is written out now, not only at flush, which
		// sets the deadline otherwise.
		c.deadline(c.nc.SetWriteDeadline, time.Now().Add(c.opts.ResponseTimeout))
	}
	c.w.WriteString(s)
	if _, err := c.w.WriteString("\r\n"); err != nil {
		c.broken = true
		return err
	}
	return nil
}

func (c *Conn) flush() error {
	if c.w.Buffered() == 0 {
		// sendBody's dot writer has flushed already.
		return nil
	}
	c.deadline(c.nc.SetWriteDeadline, time.Now().Add(c.opts.ResponseTimeout))
	if err := c.w.Flush(); err != nil {
		c.broken = true
		return err
	}
	return nil
}

func (c *Conn) cmd(line string) (reply.Reply, error) {
	if err := c.writeLine(line); err != nil {
		return reply.Reply{}, err
	}
	if err := c.flush(); err != nil {
		return reply.Reply{}, err
	}
	return c.readReply(c.opts.ResponseTimeout)
}

// maxReplyLine bounds what is kept of one reply line, its line end
// included; the rest of a longer line is read and dropped, as Postfix's
// smtp client truncates a reply line at line_length_limit (2048). RFC 5321
// section 4.5.3.1.5 allows 512 octets. Without a bound, a server (any MX)
// that sent one endless line grew the relay's memory until it was killed.
const maxReplyLine = 2048

// readLine reads one reply line without its line end, at most
// maxReplyLine octets of it.
func (c *Conn) readLine() (string, error) {
	var line []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		line = append(line, frag[:min(len(frag), maxReplyLine-len(line))]...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line), nil
}

// noGreeting waits up to GreetingTimeout for the first octet of the
// greeting, and reports that none came (nothing read, ctx not ended).
func (c *Conn) noGreeting(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false // its end set the deadline, which must stand
	}
	c.deadline(c.nc.SetReadDeadline, time.Now().Add(c.opts.GreetingTimeout))
	_, err := c.r.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && c.r.Buffered() == 0 && ctx.Err() == nil
}

func (c *Conn) readReply(timeout time.Duration) (reply.Reply, error) {
	c.peeked = false
	c.deadline(c.nc.SetReadDeadline, time.Now().Add(timeout))
	var rep reply.Reply
	for {
		line, err := c.readLine()
		if err != nil {
			c.broken = true
			return rep, err
		}
		more, err := rep.Add(line)
		if err != nil {
			c.broken = true
			return rep, err
		}
		if c.opts.Trace != nil {
			c.opts.Trace("<", line)
		}
		if !more {
			if rep.Code == 421 {
				// The server is closing the session (RFC 5321
				// section 3.8): it carries nothing more.
				c.broken = true
			}
			return rep, nil
		}
	}
}

// Message is what Send carries.
type Message struct {
	From string
	To   []string
	// MailParams and RcptParams are extra ESMTP parameters (DSN's
	// NOTIFY/ORCPT, ENVID/RET), already formatted.
	MailParams []string
	RcptParams [][]string
	// Body is the content with CRLF line endings, not dot-stuffed.
	Body     io.Reader
	Size     int64
	EightBit bool
	SMTPUTF8 bool
}

// Result is the outcome of one transaction.
type Result struct {
	Mail reply.Reply
	// Rcpt has one reply per Message.To, in order.
	Rcpt []reply.Reply
	// Data is the reply to the final dot, or to DATA if that failed.
	Data reply.Reply
	// Content reports that the content was sent: Data answers the end
	// of it (the final dot, or a refusal that came during it), not the
	// DATA command. Postfix's notices tell the two apart.
	Content bool
}

// Accepted reports whether recipient i was accepted and the message
// delivered to it.
func (r *Result) Accepted(i int) bool {
	return r.Mail.Code == 250 && i < len(r.Rcpt) && r.Rcpt[i].Code/100 == 2 && r.Data.Code/100 == 2
}

// RcptReply is the reply that decides recipient i's fate.
func (r *Result) RcptReply(i int) reply.Reply {
	switch {
	case r.Mail.Code/100 != 2:
		return r.Mail
	case i < len(r.Rcpt) && r.Rcpt[i].Code/100 != 2:
		return r.Rcpt[i]
	default:
		return r.Data
	}
}

func (c *Conn) mailLine(m *Message) string {
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + m.From + ">")
	if _, ok := c.ext["SIZE"]; ok && m.Size > 0 {
		b.WriteString(" SIZE=" + strconv.FormatInt(m.Size, 10))
	}
	if _, ok := c.ext["8BITMIME"]; ok && m.EightBit {
		b.WriteString(" BODY=8BITMIME")
	}
	if _, ok := c.ext["SMTPUTF8"]; ok && m.SMTPUTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if _, ok := c.ext["DSN"]; ok {
		for _, p := range m.MailParams {
			b.WriteString(" " + p)
		}
	}
	return b.String()
}

// utf8Refused is the reply for an address that needs SMTPUTF8 when the
// server does not offer it: the client never sends it raw (RFC 6531
// section 3.2), and the address fails with 5.6.7 as RFC 6531 section 3.6.1
// asks, unsent.
func (c *Conn) utf8Refused(code int, addr string) (reply.Reply, bool) {
	if _, ok := c.ext["SMTPUTF8"]; ok || ascii(addr) {
		return reply.Reply{}, false
	}
	return UTF8AddressRefusal(code, addr), true
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (c *Conn) rcptLine(m *Message, i int) string {
	s := "RCPT TO:<" + m.To[i] + ">"
	if _, ok := c.ext["DSN"]; ok && i < len(m.RcptParams) {
		for _, p := range m.RcptParams[i] {
			s += " " + p
		}
	}
	return s
}

// Send carries one message. Replies the server gives are in the Result,
// whatever they say; an error means the session broke (a network error, a
// timeout, a malformed reply), and then the Result holds what was learnt
// before. After a failed transaction the session is reset and may be used
// again unless Broken.
func (c *Conn) Send(ctx context.Context, m *Message) (*Result, error) {
	return c.SendAhead(ctx, m, nil)
}

// SendAhead is Send, and with a server that offers PIPELINING it sends
// next's MAIL, RCPT and DATA in the same write as m's final dot, so that
// the next message costs one round trip instead of two; next.Body is not
// read. The next Send whose commands are the same takes their replies and
// sends only its content; any other first closes a session that waits
// for content (Waiting), so that nothing is delivered that was not meant.
// When the replies to next's commands cannot be read, the session is
// Broken and m's Result stands; a 421 read before (to next's MAIL or a
// RCPT) is kept for next's Send all the same (Answered).
func (c *Conn) SendAhead(ctx context.Context, m, next *Message) (*Result, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	c.ctx = ctx
	defer func() { c.ctx = nil }()
	res := &Result{}
	if a := c.ahead; a != nil {
		c.ahead = nil
		if c.pipelines(m) && slices.Equal(a.lines, c.commands(m)) {
			*res = a.res
			if a.err != nil {
				return res, a.err
			}
			return res, c.proceed(m, res, next)
		}
		if a.res.Data.Code == 354 || c.broken {
			c.broken = true
			c.nc.Close()
			return res, &Error{Stage: "mail", Err: errAbandoned}
		}
		if err := c.reset(); err != nil || c.broken {
			return res, &Error{Stage: "rset", Err: errAbandoned}
		}
	}
	if c.pipelines(m) {
		c.writeLines(c.commands(m))
		if err := c.flush(); err != nil {
			return res, &Error{Stage: "mail", Err: err}
		}
		if err := c.readGroup(res, len(m.To)); err != nil {
			return res, err
		}
		return res, c.proceed(m, res, next)
	}
	if rep, refused := c.utf8Refused(550, m.From); refused {
		res.Mail = rep
		return res, nil
	}
	var err error
	if res.Mail, err = c.cmd(c.mailLine(m)); err != nil {
		return res, &Error{Stage: "mail", Err: err}
	}
	if res.Mail.Code != 250 {
		return res, c.reset()
	}
	anyOK := false
	for i := range m.To {
		if rep, refused := c.utf8Refused(553, m.To[i]); refused {
			res.Rcpt = append(res.Rcpt, rep)
			continue
		}
		rep, err := c.cmd(c.rcptLine(m, i))
		if err != nil {
			return res, &Error{Stage: "rcpt", Err: err}
		}
		res.Rcpt = append(res.Rcpt, rep)
		anyOK = anyOK || rep.Code/100 == 2
	}
	if !anyOK {
		return res, c.reset()
	}
	rep, err := c.cmd("DATA")
	if err != nil {
		return res, &Error{Stage: "data", Err: err}
	}
	if rep.Code != 354 {
		if err := c.unexpected("data", rep); err != nil {
			return res, err
		}
		res.Data = rep
		return res, c.reset()
	}
	return res, c.sendBody(m, res, nil)
}

// pipelines reports whether m's commands go in one group (RFC 2920): the
// server offers PIPELINING, and no address is refused unsent (one that
// needs SMTPUTF8 when the server lacks it), which would put the replies
// out of step.
func (c *Conn) pipelines(m *Message) bool {
	_, pipelining := c.ext["PIPELINING"]
	_, utf8 := c.ext["SMTPUTF8"]
	return pipelining && (utf8 || ascii(m.From+strings.Join(m.To, "")))
}

// commands are m's MAIL, RCPT and DATA lines.
func (c *Conn) commands(m *Message) []string {
	lines := make([]string, 0, len(m.To)+2)
	lines = append(lines, c.mailLine(m))
	for i := range m.To {
		lines = append(lines, c.rcptLine(m, i))
	}
	return append(lines, "DATA")
}

func (c *Conn) writeLines(lines []string) {
	for _, l := range lines {
		c.writeLine(l)
	}
}

// readGroup reads the replies to a group of commands: MAIL, n RCPTs and
// DATA, whose reply goes in res.Data.
func (c *Conn) readGroup(res *Result, n int) error {
	var err error
	if res.Mail, err = c.readReply(c.opts.ResponseTimeout); err != nil {
		return &Error{Stage: "mail", Err: err}
	}
	// A 354 here means the rest of the group is being read as text: its
	// replies never come.
	if err := c.notIntermediate("MAIL", res.Mail); err != nil {
		return &Error{Stage: "mail", Err: err}
	}
	for range n {
		rep, err := c.readReply(c.opts.ResponseTimeout)
		if err == nil {
			err = c.notIntermediate("RCPT", rep)
		}
		if err != nil {
			return &Error{Stage: "rcpt", Err: err}
		}
		res.Rcpt = append(res.Rcpt, rep)
	}
	if res.Data, err = c.readReply(c.opts.ResponseTimeout); err != nil {
		return &Error{Stage: "data", Err: err}
	}
	return nil
}

// closing reports whether a reply to a group is a 421: the server ends
// the session (RFC 5321 section 3.8).
func closing(res *Result) bool {
	if res.Mail.Code == 421 {
		return true
	}
	for _, r := range res.Rcpt {
		if r.Code == 421 {
			return true
		}
	}
	return false
}

// proceed goes on from the replies to a group of commands, the reply to
// DATA in res.Data: on 354 with someone to receive it, the content.
func (c *Conn) proceed(m *Message, res *Result, next *Message) error {
	rep := res.Data
	res.Data = reply.Reply{}
	if rep.Code != 354 {
		if err := c.unexpected("data", rep); err != nil {
			return err
		}
		res.Data = rep
		return c.reset()
	}
	anyOK := false
	for _, r := range res.Rcpt {
		anyOK = anyOK || r.Code/100 == 2
	}
	if res.Mail.Code != 250 || !anyOK {
		// The server said go ahead although nobody can receive the
		// message (RFC 2920 section 3.1): end the empty transaction.
		c.writeLine(".")
		if err := c.flush(); err != nil {
			return &Error{Stage: "data", Err: err}
		}
		if _, err := c.readReply(c.opts.DataTimeout); err != nil {
			return &Error{Stage: "end of data", Err: err}
		}
		return c.reset()
	}
	return c.sendBody(m, res, next)
}

// sendBody sends the content and the final dot, with next's commands
// behind them if there is a next message and they can be pipelined.
func (c *Conn) sendBody(m *Message, res *Result, next *Message) error {
	res.Content = true
	c.inText = true
	defer func() { c.inText = false }()
	c.dot.reset(c.w)
	if err := c.dot.copyText(m.Body); err != nil {
		c.broken = true
		return &Error{Stage: "data", Err: err}
	}
	if c.r.Buffered() > 0 || !c.peeked && c.unsolicited() && c.replyWaiting() {
		// The server answered before the end of the text, which RFC
		// 5321 section 4.1.1.4 forbids: a refusal is its verdict, but
		// a 2xx is not an acceptance of a text it has not seen. The
		// final dot is not sent; whatever the server would answer to
		// it must not be read as the reply to a later command. (A
		// text short enough to sit in the write buffer, behind
		// replies read ahead (SendAhead), has sent nothing since
		// Broken looked: that look stands.)
		c.broken = true
		rep, err := c.readReply(c.opts.ResponseTimeout)
		if err != nil {
			return &Error{Stage: "data", Err: err}
		}
		if rep.Code >= 400 {
			res.Data = rep
			return nil
		}
		return &Error{Stage: "data", Err: fmt.Errorf("reply before the end of the text: %q", rep.String())}
	}
	if err := c.dot.finish(); err != nil { // the final dot
		c.broken = true
		return &Error{Stage: "data", Err: err}
	}
	var a *ahead
	if next != nil && c.pipelines(next) {
		a = &ahead{lines: c.commands(next)}
		c.writeLines(a.lines)
	}
	if err := c.flush(); err != nil {
		return &Error{Stage: "data", Err: err}
	}
	rep, err := c.readReply(c.opts.DataTimeout)
	if err != nil {
		return &Error{Stage: "end of data", Err: err}
	}
	if a == nil && c.r.Buffered() > 0 {
		// More than one reply to the final dot: the server answered
		// before it (RFC 5321 section 4.1.1.4 forbids a reply before
		// the end of the text), and which reply is the verdict is
		// anyone's guess; every later reply on this session would
		// belong to an earlier command.
		c.broken = true
		return &Error{Stage: "end of data", Err: fmt.Errorf("more than one reply to the final dot: %q first", rep.String())}
	}
	if rep.Code/100 == 3 {
		// "354" again, or any other go-ahead: not a verdict.
		c.broken = true
		return &Error{Stage: "end of data", Err: fmt.Errorf("unexpected reply to the final dot: %q", rep.String())}
	}
	res.Data = rep
	if a != nil {
		// m's transaction ended with its reply, whatever it was: the
		// next one has begun, and needs no RSET. If its replies cannot
		// be read, the session is done for (readReply says so) and the
		// next message goes on another; unless the server closed it
		// with a 421 to one of them, which is the next message's own
		// reply, kept for its Send. More replies than the group asked
		// for put the session out of step: it is done for too.
		if !c.broken {
			a.err = c.readGroup(&a.res, len(next.To))
			switch {
			case a.err == nil && c.r.Buffered() > 0:
				c.broken = true
			case a.err == nil || closing(&a.res):
				c.ahead = a
			}
		}
		return nil
	}
	if res.Data.Code/100 != 2 {
		return c.reset()
	}
	return nil
}

// unexpected checks a reply to DATA other than 354: a refusal (4xx, 5xx)
// is the server's verdict on the message, but a 2xx (or another 3xx)
// would make a message the server never saw look delivered. Such a reply
// ends the session and the attempt, as a temporary failure.
func (c *Conn) unexpected(stage string, rep reply.Reply) error {
	if rep.Code >= 400 {
		return nil
	}
	c.broken = true
	return &Error{Stage: stage, Err: fmt.Errorf("unexpected reply to DATA: %q", rep.String())}
}

// reset says RSET after a failed transaction so the session can carry the
// next message.
func (c *Conn) reset() error {
	rep, err := c.cmd("RSET")
	if err != nil {
		return &Error{Stage: "rset", Err: err}
	}
	if rep.Code != 250 {
		c.broken = true
	}
	return nil
}

// The step-by-step API, for the proxy, which relays each reply to its
// client as it comes.

// Mail sends MAIL FROM with the given extra parameters.
func (c *Conn) Mail(m *Message) (reply.Reply, error) {
	if rep, refused := c.utf8Refused(550, m.From); refused {
		return rep, nil
	}
	rep, err := c.cmd(c.mailLine(m))
	if err == nil {
		err = c.notIntermediate("MAIL", rep)
	}
	if err != nil {
		return rep, &Error{Stage: "mail", Err: err}
	}
	return rep, nil
}

// Rcpt sends RCPT TO for m.To[i].
func (c *Conn) Rcpt(m *Message, i int) (reply.Reply, error) {
	if rep, refused := c.utf8Refused(553, m.To[i]); refused {
		return rep, nil
	}
	rep, err := c.cmd(c.rcptLine(m, i))
	if err == nil {
		err = c.notIntermediate("RCPT", rep)
	}
	if err != nil {
		return rep, &Error{Stage: "rcpt", Err: err}
	}
	return rep, nil
}

// notIntermediate refuses a 3xx reply to MAIL or RCPT, which RFC 5321
// section 4.3.2 never allows: a server that says 354 there may be reading
// what follows as message text. It ends the session as a temporary
// failure, so that the proxy's client hears 451 4.4.1, not the 354.
func (c *Conn) notIntermediate(verb string, rep reply.Reply) error {
	if rep.Code/100 != 3 {
		return nil
	}
	c.broken = true
	return fmt.Errorf("unexpected reply to %s: %q", verb, rep.String())
}

// Data sends DATA and, on 354, the body; it returns the reply that decides
// the transaction.
func (c *Conn) Data(m *Message) (reply.Reply, error) {
	rep, err := c.cmd("DATA")
	if err != nil {
		return rep, &Error{Stage: "data", Err: err}
	}
	c.dataRefused = rep.Code != 354
	if c.dataRefused {
		if err := c.unexpected("data", rep); err != nil {
			return reply.Reply{}, err
		}
		return rep, nil
	}
	res := &Result{}
	err = c.sendBody(m, res, nil)
	var e *Error
	if errors.As(err, &e) && e.Stage == "rset" {
		err = nil
	}
	return res.Data, err
}

// DataRefused reports whether the last Data's reply was to the DATA
// command itself (not 354): the content never went.
func (c *Conn) DataRefused() bool { return c.dataRefused }

// Reset sends RSET, ending a transaction the client abandoned.
func (c *Conn) Reset() error { return c.reset() }
