package pop3

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The two states a session reads commands in (RFC 1939 section 3); UPDATE
// is what QUIT does in transaction.
type state int

const (
	authorization state = iota
	transaction
)

// Replies used in more than one place. The bracketed codes are RFC 2449's
// and RFC 3206's.
const (
	replyAuthFailed = "-ERR [AUTH] authentication failed"
	replyInUse      = "-ERR [IN-USE] mailbox locked"
	replyTLSFirst   = "-ERR TLS required: use STLS first"
	replyBadState   = "-ERR command not valid in this state"
	replyNoMessage  = "-ERR no such message"
)

var errLineTooLong = errors.New("pop3: line too long")

// session is one client connection, served by one goroutine.
type session struct {
	srv  *Server
	opts *Options
	log  *slog.Logger
	r    *bufio.Reader
	w    *bufio.Writer

	mu   sync.Mutex // guards conn and idle, which Shutdown reads
	conn net.Conn
	idle bool // waiting for a command

	tls       bool
	state     state
	user      string // from USER, waiting for PASS
	timestamp string // the greeting's APOP timestamp; "" without APOP
	mbox      *mailbox
	errors    int
	failures  int
}

func newSession(s *Server, c net.Conn) *session {
	sess := &session{srv: s, opts: &s.opts, conn: c,
		log: s.log.With("client", c.RemoteAddr().String())}
	sess.r = bufio.NewReaderSize(c, s.opts.MaxLineLength)
	sess.w = bufio.NewWriterSize(deadlineWriter{sess}, 32<<10)
	return sess
}

// deadlineWriter writes to the session's connection with a fresh write
// deadline for every write, so that a long RETR to a slow client is fine
// and a client that stops reading is not.
type deadlineWriter struct{ s *session }

func (d deadlineWriter) Write(p []byte) (int, error) {
	c := d.s.conn // only the session goroutine changes conn, and it is the writer
	c.SetWriteDeadline(time.Now().Add(d.s.opts.IdleTimeout))
	return c.Write(p)
}

// interrupt ends a session that waits for a command; one running a command
// stops before reading the next. Called by Shutdown.
func (sess *session) interrupt() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.idle {
		sess.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (sess *session) closeConn() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.conn.Close()
}

// serve runs the session to its end.
func (sess *session) serve() {
	defer func() {
		if v := recover(); v != nil {
			sess.log.Error("pop3: session panicked", "panic", v, "stack", string(debug.Stack()))
		}
		if sess.mbox != nil {
			sess.mbox.close()
		}
		sess.closeConn()
	}()
	greeting := "+OK relaykeeper POP3 server ready"
	if sess.opts.APOP != nil {
		sess.timestamp = sess.srv.timestamp()
		greeting += " " + sess.timestamp
	}
	if sess.reply("%s", greeting) != nil {
		return
	}
	for {
		line, err := sess.readLine()
		if err != nil {
			sess.readFailed(err)
			return
		}
		verb, args, err := parseCommand(line)
		if err != nil {
			if !sess.fail("-ERR bad command syntax") {
				return
			}
			continue
		}
		if !sess.command(verb, args) {
			return
		}
	}
}

// readFailed says why the session ends, when the client can still hear it.
func (sess *session) readFailed(err error) {
	var ne net.Error
	switch {
	case sess.srv.closing.Load():
		sess.reply("-ERR [SYS/TEMP] server shutting down")
	case errors.Is(err, errLineTooLong):
		sess.reply("-ERR line too long")
	case errors.As(err, &ne) && ne.Timeout():
		sess.log.Info("pop3: idle timeout", "user", sess.loggedIn())
		sess.reply("-ERR autologout: idle for too long")
	}
}

func (sess *session) loggedIn() string {
	if sess.state == transaction {
		return sess.user
	}
	return ""
}

// readLine reads one line, without its line ending (CRLF, or a bare LF from
// lenient clients), waiting at most the idle timeout. A line longer than
// MaxLineLength is an error that ends the session.
func (sess *session) readLine() (string, error) {
	sess.mu.Lock()
	if sess.srv.closing.Load() {
		sess.mu.Unlock()
		return "", net.ErrClosed
	}
	sess.idle = true
	sess.conn.SetReadDeadline(time.Now().Add(sess.opts.IdleTimeout))
	sess.mu.Unlock()
	defer func() {
		sess.mu.Lock()
		sess.idle = false
		sess.mu.Unlock()
	}()
	b, err := sess.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(b[:len(b)-1], []byte{'\r'})
	return string(b), nil
}

// reply sends one response line.
func (sess *session) reply(format string, a ...any) error {
	if len(a) > 0 {
		fmt.Fprintf(sess.w, format, a...)
	} else {
		sess.w.WriteString(format)
	}
	sess.w.WriteString("\r\n")
	return sess.w.Flush()
}

// fail sends an -ERR reply and counts it; it returns false when the session
// must end, having had too many errors.
func (sess *session) fail(msg string) bool {
	sess.errors++
	if sess.errors >= sess.opts.MaxErrors {
		sess.log.Warn("pop3: too many errors; closing", "errors", sess.errors)
		sess.reply("%s; too many errors, closing", msg)
		return false
	}
	return sess.reply("%s", msg) == nil
}

// command runs one command; it returns false when the session is over.
func (sess *session) command(verb string, args []string) bool {
	switch verb {
	case "CAPA":
		return sess.capa()
	case "QUIT":
		return sess.quit()
	}
	if sess.state == authorization {
		switch verb {
		case "USER", "PASS", "APOP", "AUTH":
			if sess.opts.RequireTLS && !sess.tls {
				return sess.fail(replyTLSFirst)
			}
		}
		switch verb {
		case "STLS":
			return sess.stls(args)
		case "USER":
			if len(args) != 1 {
				return sess.fail("-ERR usage: USER name")
			}
			sess.user = args[0]
			return sess.reply("+OK send PASS") == nil
		case "PASS":
			if sess.user == "" {
				return sess.fail("-ERR USER first")
			}
			if len(args) != 1 {
				return sess.fail("-ERR usage: PASS password")
			}
			user := sess.user
			sess.user = ""
			return sess.login("USER", user, func() bool { return sess.opts.Auth != nil && sess.opts.Auth.Verify(user, args[0]) })
		case "APOP":
			return sess.apop(args)
		case "AUTH":
			return sess.auth(args)
		case "STAT", "LIST", "UIDL", "TOP", "RETR", "DELE", "RSET", "NOOP":
			return sess.fail(replyBadState)
		}
		return sess.fail("-ERR unknown command")
	}
	switch verb {
	case "STAT":
		if len(args) != 0 {
			return sess.fail("-ERR usage: STAT")
		}
		n, size := sess.mbox.stat()
		return sess.reply("+OK %d %d", n, size) == nil
	case "LIST", "UIDL":
		return sess.list(verb, args)
	case "TOP":
		if len(args) != 2 {
			return sess.fail("-ERR usage: TOP message lines")
		}
		lines, err := strconv.ParseUint(args[1], 10, 31)
		if errors.Is(err, strconv.ErrRange) {
			err = nil // more lines than any message has: all of it
		}
		if err != nil {
			return sess.fail("-ERR usage: TOP message lines")
		}
		return sess.send(args[0], int(lines))
	case "RETR":
		if len(args) != 1 {
			return sess.fail("-ERR usage: RETR message")
		}
		return sess.send(args[0], -1)
	case "DELE":
		if len(args) != 1 {
			return sess.fail("-ERR usage: DELE message")
		}
		m, errReply := sess.message(args[0])
		if m == nil {
			return sess.fail(errReply)
		}
		m.deleted = true
		return sess.reply("+OK message %s deleted", args[0]) == nil
	case "RSET":
		if len(args) != 0 {
			return sess.fail("-ERR usage: RSET")
		}
		for i := range sess.mbox.msgs {
			sess.mbox.msgs[i].deleted = false
		}
		n, size := sess.mbox.stat()
		return sess.reply("+OK maildrop has %d messages (%d octets)", n, size) == nil
	case "NOOP":
		return sess.reply("+OK") == nil
	case "USER", "PASS", "APOP", "AUTH", "STLS":
		return sess.fail(replyBadState)
	}
	return sess.fail("-ERR unknown command")
}

// capa lists the capabilities (RFC 2449), which depend on the state and on
// whether TLS is on: USER and SASL only where logging in is allowed now,
// STLS only before TLS and login.
func (sess *session) capa() bool {
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if sess.state == authorization {
		if !sess.opts.RequireTLS || sess.tls {
			caps = append(caps, "USER", "SASL PLAIN")
		}
		if sess.opts.TLSConfig != nil && !sess.tls {
			caps = append(caps, "STLS")
		}
	}
	caps = append(caps, "IMPLEMENTATION relaykeeper")
	sess.w.WriteString("+OK capability list follows\r\n")
	for _, c := range caps {
		sess.w.WriteString(c + "\r\n")
	}
	return sess.reply(".") == nil
}

// stls starts TLS (RFC 2595 section 4). Whatever the client sent after
// STLS in the same packet is thrown away with the old reader, so that
// plaintext cannot be injected into the TLS session (CVE-2011-0411).
func (sess *session) stls(args []string) bool {
	switch {
	case len(args) != 0:
		return sess.fail("-ERR usage: STLS")
	case sess.opts.TLSConfig == nil:
		return sess.fail("-ERR STLS not available")
	case sess.tls:
		return sess.fail("-ERR TLS already active")
	}
	if sess.reply("+OK begin TLS negotiation") != nil {
		return false
	}
	tc := tls.Server(sess.conn, sess.opts.TLSConfig)
	tc.SetDeadline(time.Now().Add(sess.opts.IdleTimeout))
	if err := tc.Handshake(); err != nil {
		sess.log.Info("pop3: TLS handshake failed", "err", err)
		return false
	}
	tc.SetDeadline(time.Time{})
	sess.mu.Lock()
	sess.conn = tc
	sess.mu.Unlock()
	sess.tls = true
	sess.user = ""
	sess.r = bufio.NewReaderSize(tc, sess.opts.MaxLineLength)
	sess.w.Reset(deadlineWriter{sess})
	return true
}

// apop checks "APOP name digest": digest is the hex MD5 of the greeting's
// timestamp followed by the user's password (RFC 1939 section 7).
func (sess *session) apop(args []string) bool {
	if sess.opts.APOP == nil {
		return sess.fail("-ERR APOP not available")
	}
	if len(args) != 2 {
		return sess.fail("-ERR usage: APOP name digest")
	}
	user, digest := args[0], strings.ToLower(args[1])
	return sess.login("APOP", user, func() bool {
		secret, ok := sess.opts.APOP.APOPSecret(user)
		if !ok {
			// The same work for an unknown user, so that timing
			// does not tell which users exist.
			secret = "relaykeeper: no such user"
		}
		sum := md5.Sum([]byte(sess.timestamp + secret))
		want := hex.EncodeToString(sum[:])
		return subtle.ConstantTimeCompare([]byte(want), []byte(digest)) == 1 && ok
	})
}

// auth runs "AUTH PLAIN [initial-response]" (RFC 5034, RFC 4616); "AUTH"
// alone lists the mechanisms, as RFC 1734 clients expect.
func (sess *session) auth(args []string) bool {
	if len(args) == 0 {
		return sess.reply("+OK\r\nPLAIN\r\n.") == nil
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		return sess.fail("-ERR unsupported authentication mechanism")
	}
	if len(args) > 2 {
		return sess.fail("-ERR usage: AUTH PLAIN [initial-response]")
	}
	var resp string
	if len(args) == 2 {
		resp = args[1]
		if resp == "=" {
			resp = "" // RFC 5034 section 4: an empty initial response
		}
	} else {
		if sess.reply("+ ") != nil {
			return false
		}
		line, err := sess.readLine()
		if err != nil {
			sess.readFailed(err)
			return false
		}
		if line == "*" {
			return sess.fail("-ERR authentication cancelled")
		}
		resp = line
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return sess.login("PLAIN", "", func() bool { return false })
	}
	// authzid NUL authcid NUL passwd; an authzid other than the user is
	// not supported.
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] == "" || parts[0] != "" && parts[0] != parts[1] {
		return sess.login("PLAIN", "", func() bool { return false })
	}
	return sess.login("PLAIN", parts[1], func() bool { return sess.opts.Auth != nil && sess.opts.Auth.Verify(parts[1], parts[2]) })
}

// login finishes a login attempt with mech (USER, APOP or PLAIN), whose
// password check is check: on success it opens and locks the maildrop and
// enters the transaction state. The check runs in the address's turn
// (Throttle.Serialize), and only while the address is under the failure
// limit. A failure or a refusal is a mail-log reject line, for fail2ban.
func (sess *session) login(mech, user string, check func() bool) bool {
	ip := clientIP(sess.conn.RemoteAddr())
	ok := false
	if t := sess.opts.Throttle; t != nil {
		endTurn := t.Serialize(ip)
		if !t.Allow(ip) {
			endTurn()
			// Refused whether or not the password was right:
			// otherwise guesses spread over connections would
			// find it.
			sess.log.Warn("pop3: login refused: too many failures from this address", "user", user)
			const refused = "-ERR [SYS/TEMP] too many failed logins from your address; try again later"
			sess.rejected(refused)
			sess.reply(refused)
			return false
		}
		ok = check()
		if !ok {
			t.Fail(ip, user)
		}
		endTurn()
	} else {
		ok = check()
	}
	if !ok {
		sess.failures++
		sess.log.Warn("pop3: authentication failed", "user", user, "failures", sess.failures)
		sess.rejected(replyAuthFailed, "mech", mech)
		if sess.opts.FailDelay > 0 {
			time.Sleep(sess.opts.FailDelay)
		}
		if sess.failures >= sess.opts.MaxAuthFailures {
			sess.reply(replyAuthFailed)
			return false
		}
		return sess.fail(replyAuthFailed)
	}
	dir, err := mailboxDir(sess.opts.SpoolDir, sess.opts.ByName, user)
	if err != nil {
		sess.log.Warn("pop3: refused mailbox", "user", user, "err", err)
		if errors.Is(err, errBadMailbox) {
			return sess.fail("-ERR [SYS/PERM] no mailbox for this user name")
		}
		return sess.fail("-ERR [SYS/TEMP] cannot open mailbox")
	}
	mbox, err := openMailbox(dir, sess.log, &sess.srv.sizes)
	if errors.Is(err, errInUse) {
		sess.log.Info("pop3: mailbox in use", "user", user, "dir", dir)
		return sess.fail(replyInUse)
	}
	if err != nil {
		sess.log.Error("pop3: cannot open mailbox", "user", user, "dir", dir, "err", err)
		return sess.fail("-ERR [SYS/TEMP] cannot open mailbox")
	}
	if t := sess.opts.Throttle; t != nil {
		t.Succeed(ip, user)
	}
	sess.mbox, sess.state, sess.user = mbox, transaction, user
	n, size := mbox.stat()
	sess.log.Info("pop3: login", "user", user, "dir", dir, "messages", n, "tls", sess.tls)
	return sess.reply("+OK maildrop locked and ready: %d messages (%d octets)", n, size) == nil
}

// message returns the message numbered arg, or the -ERR reply to send.
func (sess *session) message(arg string) (*message, string) {
	n, err := strconv.ParseUint(arg, 10, 31)
	if err != nil || n < 1 || int(n) > len(sess.mbox.msgs) {
		return nil, replyNoMessage
	}
	m := &sess.mbox.msgs[n-1]
	if m.deleted {
		return nil, fmt.Sprintf("-ERR message %d already deleted", n)
	}
	return m, ""
}

// list runs LIST and UIDL, for one message or all.
func (sess *session) list(verb string, args []string) bool {
	field := func(m *message) string {
		if verb == "UIDL" {
			return m.uid
		}
		return strconv.FormatInt(m.size, 10)
	}
	switch len(args) {
	case 1:
		m, errReply := sess.message(args[0])
		if m == nil {
			return sess.fail(errReply)
		}
		// The message's number, not the argument as typed ("01"):
		// RFC 1939's scan listing and RFC 2449's unique-id listing
		// start with the message-number, which clients match.
		n, _ := strconv.ParseUint(args[0], 10, 31) // message() took it
		return sess.reply("+OK %d %s", n, field(m)) == nil
	case 0:
	default:
		return sess.fail("-ERR usage: " + verb + " [message]")
	}
	n, size := sess.mbox.stat()
	if verb == "LIST" {
		fmt.Fprintf(sess.w, "+OK %d messages (%d octets)\r\n", n, size)
	} else {
		sess.w.WriteString("+OK unique-id listing follows\r\n")
	}
	for i := range sess.mbox.msgs {
		if m := &sess.mbox.msgs[i]; !m.deleted {
			fmt.Fprintf(sess.w, "%d %s\r\n", i+1, field(m))
		}
	}
	return sess.reply(".") == nil
}

// send runs RETR (lines < 0) and TOP.
func (sess *session) send(arg string, lines int) bool {
	m, errReply := sess.message(arg)
	if m == nil {
		return sess.fail(errReply)
	}
	f, err := sess.mbox.sp.OpenContent(m.id)
	if err != nil {
		// Delivered and removed by a forwarder since login.
		sess.log.Info("pop3: message gone", "id", m.id, "err", err)
		return sess.fail("-ERR [SYS/TEMP] message no longer available")
	}
	defer f.Close()
	if lines < 0 {
		fmt.Fprintf(sess.w, "+OK %d octets\r\n", m.size)
	} else {
		sess.w.WriteString("+OK top of message follows\r\n")
	}
	if err := writeMessage(sess.w, f, lines); err != nil {
		// Too late for -ERR: the +OK went out. Drop the connection so
		// that the client sees a broken response, not a short message.
		sess.log.Error("pop3: reading message failed", "id", m.id, "err", err)
		return false
	}
	return sess.w.Flush() == nil
}

// deleted tells the mail log of a message the session removed.
func (sess *session) deleted(id string) {
	if ml := sess.opts.MailLog; ml != nil {
		ml.PopDelete(id, sess.conn.RemoteAddr().String(), sess.user)
	}
}

// rejected tells the mail log of a failed or refused login, in the form
// of SMTP AUTH's (stage=auth), with service=pop3 last.
func (sess *session) rejected(reply string, kv ...string) {
	if ml := sess.opts.MailLog; ml != nil {
		ml.Reject(sess.conn.RemoteAddr().String(), "auth", reply, append(kv, "service", "pop3")...)
	}
}

// quit ends the session; in transaction it first removes the messages
// marked deleted (RFC 1939 section 6, the UPDATE state).
func (sess *session) quit() bool {
	if sess.state != transaction {
		sess.reply("+OK bye")
		return false
	}
	var msg string
	if sess.opts.NoDelete {
		msg = "+OK bye (nothing deleted: --pop-no-delete)"
	} else if removed, kept := sess.mbox.commit(sess.log, sess.deleted); kept > 0 {
		msg = fmt.Sprintf("-ERR [SYS/TEMP] %d deleted messages not removed: in use; try again later", kept)
	} else {
		n, _ := sess.mbox.stat()
		sess.log.Info("pop3: logout", "user", sess.user, "removed", removed)
		msg = fmt.Sprintf("+OK bye (%d messages removed, %d left)", removed, n)
	}
	// The lock goes before the reply: a client that logs in again as
	// soon as it hears it finds the maildrop free.
	sess.mbox.close()
	sess.mbox = nil
	sess.reply("%s", msg)
	return false
}
