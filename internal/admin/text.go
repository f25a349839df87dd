package admin

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/connlimit"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

const (
	// maxLine bounds a command line; a longer one closes the session.
	maxLine = 4096
	// writeTimeout bounds every write, so that a client that stops
	// reading cannot keep a session (or its notify stream) forever.
	writeTimeout = time.Minute
)

// ServeText accepts connections on l and speaks E-MailRelay's admin line
// protocol on each until Shutdown or Close, after which it returns
// ErrServerClosed. It refuses, with ErrPasswordRequired, a listener that
// is not on a loopback address unless a password is set.
func (s *Server) ServeText(l net.Listener) error {
	if err := s.CheckListener(l); err != nil {
		return err
	}
	if !s.track(l) {
		return ErrServerClosed
	}
	defer s.untrack(l)
	l = connlimit.Listener(l, &s.textLimit, func(why string) string {
		s.log.Warn("admin: client refused: " + why)
		return "error: " + why + "; try again later\r\n"
	})
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("admin: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("admin: %w", err)
		}
		delay = 0
		if !s.clientAllowed(nc.RemoteAddr()) {
			s.log.Warn("admin: remote client refused (--remote-clients)", "client", nc.RemoteAddr().String())
			nc.Close()
			continue
		}
		ss := &session{s: s, conn: nc, br: bufio.NewReaderSize(nc, maxLine),
			log: s.log.With("client", nc.RemoteAddr().String())}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			ss.serve()
		}()
	}
}

// isTemporary reports whether an accept error will likely go away (EMFILE
// and the like), so that the accept loop waits and tries again, as
// net/http's does.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// session is one text-protocol connection.
type session struct {
	s    *Server
	conn net.Conn
	br   *bufio.Reader
	log  *slog.Logger

	// Read and changed by the session's goroutine only.
	authed bool
	errors int
	notify func() // ends the notify stream; nil when not notifying
	linger bool   // closing on an error: let the client read the reason

	wmu      sync.Mutex // guards writes to conn and atPrompt
	atPrompt bool       // the last thing written was the prompt
}

// serve reads commands and answers them until the session ends.
func (ss *session) serve() {
	defer func() {
		if p := recover(); p != nil {
			ss.log.Error("admin: panic in session", "panic", p, "stack", string(debug.Stack()))
		}
		if ss.notify != nil {
			ss.notify()
		}
		if ss.linger {
			lingeringClose(ss.conn)
		}
		ss.conn.Close()
		ss.s.mu.Lock()
		delete(ss.s.sessions, ss)
		ss.s.mu.Unlock()
		ss.log.Debug("admin: session closed")
	}()
	ss.log.Debug("admin: session opened")
	ss.authed = !ss.s.requirePassword()
	for {
		if !ss.armReadDeadline() {
			return
		}
		line, err := ss.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			ss.writeLine("error: line too long")
			ss.linger = true
			ss.log.Warn("admin: line too long; closing")
			return
		}
		if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
			return
		}
		if !ss.handle(strings.TrimRight(string(line), "\r\n")) {
			return
		}
		if err != nil {
			return // a last line without its end, then EOF
		}
	}
}

// lingeringClose half-closes a TCP connection and reads what the client
// has still sent, for a moment, before the close: closing with unread input
// makes the kernel send a reset, which can destroy the error line the
// client has not read yet (as net/http's closeWriteAndWait avoids).
func lingeringClose(nc net.Conn) {
	tc, ok := nc.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	tc.CloseWrite()
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, nc, 256<<10)
}

// armReadDeadline sets the idle timeout before a read; false when the
// server is shutting down. It runs under the server's lock so that it
// cannot undo the deadline Shutdown sets.
func (ss *session) armReadDeadline() bool {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.closing {
		return false
	}
	var d time.Time // notify mode: no idle timeout, as in E-MailRelay
	if ss.notify == nil {
		d = time.Now().Add(ss.s.opts.IdleTimeout)
	}
	ss.conn.SetReadDeadline(d)
	return true
}

// write sends text as it is; false if the client is gone.
func (ss *session) write(text string, prompt bool) bool {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := ss.conn.Write([]byte(text))
	ss.atPrompt = prompt
	return err == nil
}

// reply sends text, one line per "\n" in it, then the prompt, as
// E-MailRelay does: an empty text sends the prompt alone.
func (ss *session) reply(text string) bool {
	var b strings.Builder
	if text != "" {
		b.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
		b.WriteString("\r\n")
	}
	b.WriteString(ss.s.opts.Prompt)
	return ss.write(b.String(), true)
}

// writeLine sends one line without a prompt, before the session closes.
func (ss *session) writeLine(text string) {
	ss.write(text+"\r\n", false)
}

// refuse answers an unknown or refused command and counts it; false when
// that reaches the error limit, after which the session closes.
func (ss *session) refuse(text string) bool {
	ss.errors++
	if ss.errors >= ss.s.opts.ErrorLimit {
		ss.writeLine(text)
		ss.linger = true
		ss.log.Warn("admin: too many errors; closing", "errors", ss.errors)
		return false
	}
	return ss.reply(text)
}

// handle carries out one command line; false ends the session.
func (ss *session) handle(line string) bool {
	c := parseCommand(line)
	if !ss.authed {
		switch c.verb {
		case verbEmpty, verbQuit, verbHTTP, verbPassword:
		default:
			return ss.refuse("error: password required: send \"password SECRET\" first")
		}
	}
	if c.usage != "" {
		return ss.reply(c.usage)
	}
	s := ss.s
	switch c.verb {
	case verbEmpty:
		return ss.reply("")
	case verbUnknown:
		return ss.refuse("error: unrecognised command")
	case verbHTTP:
		ss.log.Warn("admin: HTTP request on the text port; closing")
		return false
	case verbPassword:
		return ss.password(c.secret)
	case verbQuit:
		return false
	case verbHelp:
		return ss.reply(ss.help())
	case verbStatus:
		return ss.reply(s.statusText())
	case verbList:
		return ss.reply(s.ids(spool.Ready, spool.Claimed, spool.Held))
	case verbFailures:
		return ss.reply(s.ids(spool.Failed))
	case verbUnfailAll:
		ss.log.Info("admin: unfail-all")
		return ss.reply(s.unfailAllText())
	case verbForward:
		if err := s.forward(); err != nil {
			return ss.reply("error: " + oneLine(err.Error()))
		}
		return ss.reply("OK")
	case verbFlush:
		ss.log.Info("admin: flush")
		if err := s.flush(s.ctx); err != nil {
			ss.log.Info("admin: flush done", "err", err)
			return ss.reply("error: " + oneLine(err.Error()))
		}
		ss.log.Info("admin: flush done")
		return ss.reply("OK")
	case verbNotify:
		return ss.startNotify()
	case verbPID:
		return ss.reply(fmt.Sprint(os.Getpid()))
	case verbInfo:
		return ss.reply(s.info(c.key))
	case verbSMTP:
		sw, ok := s.relay.(SMTPSwitch)
		if !ok {
			return ss.reply("error: not supported by this relay")
		}
		ss.log.Info("admin: smtp", "enabled", c.on)
		if err := s.setSMTP(sw, c.on); err != nil {
			return ss.reply("error: " + err.Error())
		}
		return ss.reply("OK")
	case verbDNSBL:
		if err := s.setDNSBL(c.on, time.Duration(c.seconds)*time.Second); err != nil {
			return ss.reply("error: " + err.Error())
		}
		ss.log.Info("admin: dnsbl", "enabled", c.on, "seconds", c.seconds)
		return ss.reply("OK")
	case verbTerminate:
		t, ok := s.terminator()
		if !ok {
			ss.log.Warn("admin: terminate refused: not allowed")
			return ss.refuse("error: terminate is not allowed (--admin-terminate)")
		}
		ss.log.Warn("admin: terminate")
		ss.writeLine("OK")
		t.Terminate()
		return false
	}
	return ss.refuse("error: unrecognised command")
}

// password checks the secret; a wrong one closes the session at once, so
// that each guess costs a connection (and a log line).
func (ss *session) password(secret string) bool {
	if !ss.s.requirePassword() {
		return ss.reply("error: no password is configured")
	}
	ip := addrIP(ss.conn.RemoteAddr().String())
	allowed, ok := ss.s.tryPassword(ip, func() bool { return ss.s.checkPassword(secret) })
	if !allowed {
		// Refused whether or not the password is right: otherwise
		// guesses spread over connections would find it.
		ss.writeLine("error: too many wrong passwords from your address; try again later")
		ss.linger = true
		ss.log.Warn("admin: password refused: too many wrong ones from this address")
		return false
	}
	if !ok {
		ss.writeLine("error: wrong password")
		ss.linger = true
		ss.log.Warn("admin: wrong password")
		return false
	}
	ss.authed = true
	return ss.reply("OK")
}

// checkPassword compares in constant time; hashing first hides the length.
func (s *Server) checkPassword(got string) bool {
	a := sha256.Sum256([]byte(got))
	b := sha256.Sum256([]byte(s.opts.Password))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// help lists the commands this session may use, as E-MailRelay does.
func (ss *session) help() string {
	cmds := []string{"dnsbl", "failures", "flush", "forward", "help", "info", "list", "notify"}
	if ss.s.requirePassword() {
		cmds = append(cmds, "password")
	}
	cmds = append(cmds, "pid", "quit", "smtp", "status")
	if _, ok := ss.s.terminator(); ok {
		cmds = append(cmds, "terminate")
	}
	cmds = append(cmds, "unfail-all")
	return "commands: " + strings.Join(cmds, ", ")
}

// startNotify switches the session to notify mode: events are written as
// "EVENT: line" while commands keep working, and the idle timeout is off.
// Like E-MailRelay it sends no reply.
func (ss *session) startNotify() bool {
	if ss.notify != nil {
		return true
	}
	if ss.s.opts.Events == nil {
		return ss.reply("error: no events are configured")
	}
	events, cancel := ss.s.opts.Events.Subscribe()
	done := make(chan struct{})
	stopped := make(chan struct{})
	ss.notify = func() {
		close(done)
		cancel()
		<-stopped
	}
	go func() {
		defer close(stopped)
		for {
			select {
			case line, ok := <-events:
				if !ok || !ss.event(line) {
					ss.conn.Close() // the session sees it and ends
					return
				}
			case <-done:
				return
			case <-ss.s.ctx.Done():
				return
			}
		}
	}()
	ss.log.Debug("admin: notify on")
	return true
}

// event writes one event line; after a prompt it starts a new line first.
func (ss *session) event(line string) bool {
	ss.wmu.Lock()
	prefix := ""
	if ss.atPrompt {
		prefix = "\r\n"
	}
	ss.wmu.Unlock()
	return ss.write(prefix+"EVENT: "+oneLine(line)+"\r\n", false)
}

// oneLine makes text safe to send as one line: control characters become
// spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func (s *Server) unfailAllText() string {
	res, err := s.unfailAll()
	if err != nil {
		return "error: " + oneLine(err.Error())
	}
	var lines []string
	done := 0
	for _, r := range res {
		if r.OK() {
			done++
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: %s: %s", r.ID, r.Outcome, oneLine(r.Detail)))
	}
	if done < len(res) {
		lines = append(lines, fmt.Sprintf("error: %d of %d not unfailed", len(res)-done, len(res)))
	} else {
		lines = append(lines, fmt.Sprintf("OK: %d unfailed", done))
	}
	return strings.Join(lines, "\n")
}

// statusText is the status command's reply.
func (s *Server) statusText() string {
	r := s.report()
	var b strings.Builder
	fmt.Fprintf(&b, "pid: %d\n", r.PID)
	if r.Version != "" {
		fmt.Fprintf(&b, "version: %s\n", r.Version)
	}
	if !r.Started.IsZero() {
		fmt.Fprintf(&b, "started: %s (up %s)\n", r.Started.UTC().Format(time.RFC3339),
			time.Duration(r.UptimeSeconds)*time.Second)
	}
	fmt.Fprintf(&b, "listening: %s\n", orNone(strings.Join(r.Listeners, " ")))
	fmt.Fprintf(&b, "smtp: %s\n", map[bool]string{true: "enabled", false: "disabled"}[r.SMTPEnabled])
	fmt.Fprintf(&b, "dnsbl: %s\n", map[bool]string{true: "enabled", false: "disabled"}[r.DNSBLEnabled])
	fmt.Fprintf(&b, "smtp sessions: %d open, %d since start\n", r.Sessions, r.Connections)
	fmt.Fprintf(&b, "messages: %d accepted, %d forwarded, %d failed\n", r.Accepted, r.Forwarded, r.Failed)
	if r.QueueError != "" {
		fmt.Fprintf(&b, "queue: error: %s", oneLine(r.QueueError))
	} else {
		q := r.Queue
		fmt.Fprintf(&b, "queue: %d ready, %d being forwarded, %d failed, %d held, %d being received",
			q["ready"], q["claimed"], q["failed"], q["held"], q["new"])
	}
	if r.Quarantined > 0 {
		fmt.Fprintf(&b, "\nquarantine: %d set aside by recovery (relaykeeper queue quarantine)", r.Quarantined)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
