// Package milter runs a spooled message past a Sendmail/Postfix milter
// (OpenDKIM, OpenDMARC, rspamd, milter-greylist...) as a filter.Filter.
//
// For each message Run opens a new milter session and replays the SMTP
// transaction from the spool files, as Postfix does for its smtpd_milters:
// connect (the client's address from the envelope's X-MailRelay-Client),
// HELO (X-Relaykeeper-Helo), MAIL (X-MailRelay-From), one RCPT for each
// X-MailRelay-To-Remote, the header fields and body of the content file, and
// end-of-message. The milter's answer becomes a filter.Result:
//
//	accept, continue           OK, with the milter's changes applied
//	reject                     Reject, the milter's reply or 550 5.7.1
//	tempfail                   TempFail, the milter's reply or 451 4.7.1
//	discard                    Abandon
//	quarantine                 OK with Reason "quarantined: REASON" (Quarantined)
//
// A reject or tempfail for one recipient refuses the whole message: the
// message has already been received, so there is no per-recipient reply to
// give.
//
// # Changes
//
// Header changes (add, insert, change, delete) and a replaced body are
// written to the content file atomically, as the filter package's built-in
// filters do: a temporary file beside it, fsynced, renamed over it, the
// directory fsynced. Recipients the milter adds or deletes are written to
// the envelope file the same way, after the content; a milter that deletes
// every recipient gets Abandon. Changes are applied only when the milter's
// final answer lets the message go on. The milter may not change the
// envelope sender (SMFIF_CHGFROM is not offered, to stay within protocol
// version 2) and is not offered SMFIP_HDR_LEADSPC, so a field it adds is
// written "Name: value".
//
// # Failure behaviour
//
// A milter that cannot be reached, breaks the protocol or runs past a
// timeout gives Options.DefaultAction, Postfix's milter_default_action:
// tempfail (the default: the message is never lost), accept (the message
// goes on unfiltered, with a Reason saying so), reject or quarantine. A
// context that ends and a spool file that cannot be read or rewritten
// always give TempFail.
package milter

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/hostport"
)

// Default timeouts, Postfix's milter_connect_timeout, milter_command_timeout
// and milter_content_timeout.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultContentTimeout = 300 * time.Second
)

// QuarantinePrefix starts the Reason of an OK result for a message the
// milter quarantined.
const QuarantinePrefix = "quarantined: "

// Options configure a Milter. The zero value works.
type Options struct {
	// ConnectTimeout bounds connecting to the milter; zero means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Timeout bounds each command: sending it and reading the milter's
	// answer. Zero means DefaultTimeout.
	Timeout time.Duration
	// ContentTimeout bounds each body chunk and the wait for the answer to
	// end-of-message, which is when most milters do their work. Zero means
	// DefaultContentTimeout.
	ContentTimeout time.Duration
	// DefaultAction is what to do when the milter fails: "tempfail" (or
	// empty), "accept", "reject" or "quarantine".
	DefaultAction string
	// MacroValues are sent with the connect step: "j" (our host name, by
	// default os.Hostname), "{daemon_name}" (by default "relaykeeper"),
	// "v" and any others. A name longer than one letter is put in braces
	// if it has none. Per message Run also sends {client_addr},
	// {client_port}, {client_name}, i (the queue id, from the content
	// file's name), {mail_addr}, {auth_authen} and {auth_type} (for a
	// client that authenticated; the mechanism is not recorded, so it is
	// "unknown") and {rcpt_addr}.
	MacroValues map[string]string
}

// Milter is one milter, used as a filter. It is safe for concurrent use:
// each message gets its own connection.
type Milter struct {
	addr             string
	network, address string
	connectTimeout   time.Duration
	timeout          time.Duration
	contentTimeout   time.Duration
	defaultAction    string
	macros           []string // name, value, name, value...
}

// New makes a milter filter for the milter at addr, which is one of
//
//	inet:PORT@HOST     Sendmail and OpenDKIM style
//	inet:HOST:PORT     Postfix style (inet6: too; HOST may be [::1])
//	tcp:HOST:PORT
//	unix:PATH          also local:PATH, or just PATH; PATH is absolute
func New(addr string, opts Options) (*Milter, error) {
	network, address, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	m := &Milter{
		addr: addr, network: network, address: address,
		connectTimeout: or(opts.ConnectTimeout, DefaultConnectTimeout),
		timeout:        or(opts.Timeout, DefaultTimeout),
		contentTimeout: or(opts.ContentTimeout, DefaultContentTimeout),
		defaultAction:  strings.ToLower(strings.TrimSpace(opts.DefaultAction)),
	}
	switch m.defaultAction {
	case "":
		m.defaultAction = "tempfail"
	case "tempfail", "accept", "reject", "quarantine":
	default:
		return nil, fmt.Errorf("milter: %s: default action %q: want tempfail, accept, reject or quarantine", addr, opts.DefaultAction)
	}
	macros := map[string]string{"j": "", "{daemon_name}": "relaykeeper"}
	if h, err := os.Hostname(); err == nil {
		macros["j"] = h
	}
	for k, v := range opts.MacroValues {
		macros[macroName(k)] = v
	}
	for k, v := range macros {
		if v != "" {
			m.macros = append(m.macros, k, v)
		}
	}
	return m, nil
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// macroName puts a long macro name in braces, as the protocol wants it.
func macroName(k string) string {
	if len(k) > 1 && !strings.HasPrefix(k, "{") {
		return "{" + k + "}"
	}
	return k
}

// CheckAddr says what is wrong with a milter address, nil if nothing:
// its syntax, a port from 1 to 65535, a host that is a name or an address
// (--check, before any connection).
func CheckAddr(addr string) error {
	_, _, err := parseAddr(addr)
	return err
}

// parseAddr turns a milter address into a network and an address for
// net.Dial.
func parseAddr(addr string) (network, address string, err error) {
	bad := func() (string, string, error) {
		return "", "", fmt.Errorf("milter: bad address %q: want inet:PORT@HOST, inet:HOST:PORT, tcp:HOST:PORT or unix:PATH", addr)
	}
	s := strings.TrimSpace(addr)
	if strings.HasPrefix(s, "/") {
		return "unix", s, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return bad()
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if !filepath.IsAbs(rest) {
			// Postfix resolves a relative path against its queue
			// directory (its daemons' working directory); ours would
			// resolve against wherever relaykeeper was started.
			return "", "", fmt.Errorf("milter: the socket's path is relative: give the absolute path "+
				"(Postfix reads unix:%s as in its queue directory: unix:%s)", rest, filepath.Join("/var/spool/postfix", rest))
		}
		return "unix", rest, nil
	case "inet", "inet6", "tcp", "tcp6":
		network = "tcp"
		if port, host, ok := strings.Cut(rest, "@"); ok {
			// Sendmail's inet:PORT@HOST.
			host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
			address = net.JoinHostPort(host, port)
		} else {
			address = rest
		}
		host, port, err := net.SplitHostPort(address)
		if err != nil || host == "" || hostport.Check(address) != nil {
			return bad()
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return bad()
		}
		return network, address, nil
	}
	return bad()
}

// String is the milter's address, for logs.
func (m *Milter) String() string { return "milter:" + m.addr }

// Quarantined reports whether r is a milter's quarantine, and its reason.
// The message should be held rather than sent on.
func Quarantined(r filter.Result) (reason string, ok bool) {
	if r.Outcome != filter.OK {
		return "", false
	}
	return strings.CutPrefix(r.Reason, QuarantinePrefix)
}

// Run filters one message through the milter.
func (m *Milter) Run(ctx context.Context, contentPath, envelopePath string) filter.Result {
	if err := ctx.Err(); err != nil {
		return tempFail("milter %s: %v", m.addr, err)
	}
	msg, err := readMessage(contentPath, envelopePath)
	if err != nil {
		return tempFail("milter %s: %v", m.addr, err)
	}
	defer msg.close()
	d := &dialer{ctx: ctx, timeout: m.connectTimeout, deadline: m.timeout}
	c := gomilter.NewClientWithOptions(m.network, m.address, gomilter.ClientOptions{
		Dialer: d,
		// Deadlines are set by the session, per step; see conn.
		ActionMask: actions,
	})
	s, err := c.Session()
	if d.conn != nil {
		defer d.conn.Close()
		defer d.stop()
	}
	if err != nil {
		return m.failed(ctx, err)
	}
	ses := &session{m: m, s: s, conn: d.conn, msg: msg}
	defer ses.close()
	res, mods, err := ses.run()
	if err != nil {
		return m.failed(ctx, err)
	}
	if res.Outcome != filter.OK {
		return res
	}
	left, err := msg.apply(mods)
	if err != nil {
		return tempFail("milter %s: %v", m.addr, err)
	}
	if !left {
		return filter.Result{Outcome: filter.Abandon, Reason: "milter " + m.addr + " removed every recipient"}
	}
	return res
}

// actions are what the milter may do. They stay within the milter protocol
// version 2 set, so that milters speaking only that version (go-milter's
// server) can downgrade; SMFIF_CHGFROM is the one left out.
const actions = gomilter.OptAddHeader | gomilter.OptChangeBody | gomilter.OptAddRcpt |
	gomilter.OptRemoveRcpt | gomilter.OptChangeHeader | gomilter.OptQuarantine

// failed gives the result for a milter that could not give an answer.
func (m *Milter) failed(ctx context.Context, err error) filter.Result {
	if ctx.Err() != nil {
		return tempFail("milter %s: %v", m.addr, ctx.Err())
	}
	reason := fmt.Sprintf("milter %s failed: %v", m.addr, err)
	switch m.defaultAction {
	case "accept":
		return filter.Result{Outcome: filter.OK, Reason: oneLine(reason + "; accepted unfiltered")}
	case "quarantine":
		return filter.Result{Outcome: filter.OK, Reason: QuarantinePrefix + oneLine(reason), Hold: true}
	case "reject":
		return filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1",
			Text: "filter failed, message rejected", Reason: oneLine(reason)}
	}
	return tempFail("%s", reason)
}

// tempFail is a failure to filter: the client sees a generic text, the logs
// the reason (as filter's own network filters do).
func tempFail(format string, args ...any) filter.Result {
	return filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.3.0",
		Text: "filter failed, try again later", Reason: oneLine(fmt.Sprintf(format, args...))}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// dialer connects to the milter within ctx and keeps the connection, so
// that Run can set its deadlines and cut it when ctx ends.
type dialer struct {
	ctx      context.Context
	timeout  time.Duration // for connecting
	deadline time.Duration // for the negotiation that follows
	conn     *conn
	stop     func() bool // ends the watch on ctx
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout}
	c, err := nd.DialContext(d.ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.conn = &conn{Conn: c}
	d.conn.arm(d.deadline)
	d.stop = context.AfterFunc(d.ctx, d.conn.cancel)
	return d.conn, nil
}

// conn is the connection to the milter. go-milter is given no timeouts of
// its own: the session sets a deadline before each step, and cancel, which
// runs when the context ends, sets one in the past that no later step can
// undo.
type conn struct {
	net.Conn
	mu        sync.Mutex
	cancelled bool // guarded by mu
}

func (c *conn) arm(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cancelled {
		c.Conn.SetDeadline(time.Now().Add(d))
	}
}

func (c *conn) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = true
	c.Conn.SetDeadline(time.Unix(1, 0))
}

// queueID is the message's id, from its content file's name.
func queueID(contentPath string) string {
	return strings.TrimSuffix(filepath.Base(contentPath), ".content")
}
