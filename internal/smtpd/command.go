package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The command layer.
//
// go-smtp reads commands and message text through one line limit
// (Server.MaxLineLength), so a limit that keeps command lines short also
// refuses long lines in the middle of DATA, and answers them before the
// final dot. go-smtp also answers bad sequence with 502, ends a session
// after three unknown commands, and executes command lines of any length
// up to that limit. None of this can be configured.
//
// So the relay reads the client itself: a commandConn sits between the
// client's connection and go-smtp, which runs with no line limit. It reads
// one command line at a time under the limits below, refuses what is bad
// with Postfix's reply (nothing of a refused line reaches go-smtp), and
// hands go-smtp exactly one good line per read, so that go-smtp has
// answered a command before the next one is looked at and replies keep
// their order under PIPELINING. It watches go-smtp's replies to follow the
// session's state: after 354 it passes the message text through untouched
// up to the final dot, with no line limit; after BDAT it passes the chunk.
// It does STARTTLS itself (go-smtp would wrap the connection in TLS below
// this layer and read the decrypted commands unguarded), and answers
// every error past the limit with 421.
const (
	// RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets,
	// CRLF included.
	maxCommandLine = 512
	// MAIL and RCPT with ESMTP parameters: Postfix's line_length_limit.
	maxMailLine = 2048
	// RFC 4954 section 4: an AUTH command or SASL response line may be
	// 12,288 octets long.
	maxAuthLine = 12288
	// defaultJunkLimit is Postfix's smtpd_junk_command_limit.
	defaultJunkLimit = 100
	// handshakeTimeout bounds a TLS handshake when the session has no
	// idle timeout (handshakeLimit).
	handshakeTimeout = 30 * time.Second
)

type readMode int

const (
	modeCommand readMode = iota
	modeData             // message text after 354, up to the final dot
	modeChunk            // a BDAT chunk
)

// The states of the end-of-data scanner. The text ends at CRLF "." CRLF
// (RFC 5321 section 4.1.1.4), as Postfix ends it, wherever that sequence
// starts: a CR that does not end its line leaves the scanner ready for the
// next one. go-smtp's data reader forgets it and misses the end of
// "a" CR CR LF "." CRLF, so the session takes DATA's text through Text,
// and go-smtp's reader sees only the end marker.
const (
	dBeginLine = iota
	dDot
	dDotCR
	dCR
	dData
	dEnd // the final dot's LF
)

// nextDataState is the scanner's transition: only CRLF ends a line, and
// only CRLF "." CRLF ends the message. Every CR may be the first half of
// a CRLF, whatever came before it.
func nextDataState(s int, b byte) int {
	switch {
	case s == dBeginLine && b == '.':
		return dDot
	case s == dDot && b == '\r':
		return dDotCR
	case s == dDotCR && b == '\n':
		return dEnd
	case s == dCR && b == '\n':
		return dBeginLine
	case b == '\r':
		return dCR
	}
	return dData
}

// commandConn is the client's connection as go-smtp sees it. Read and
// Write are called by go-smtp's connection goroutine only; Close and the
// TLS state may be used from any goroutine.
//
// Replies are written in batches: go-smtp writes each reply line on its
// own (an EHLO reply is eight writes), and every write to a TCP socket is
// a system call and a packet. So Write keeps the replies in out, and they
// go out together just before the connection is read from and would wait
// for the client (replyFlusher, below the read buffer), and at Close. A
// client therefore has every reply it waits for before the relay waits for
// it, as RFC 2920 section 3.1 asks of a server under PIPELINING; a client
// that sends one command at a time sees no difference but fewer packets.
type commandConn struct {
	net.Conn // the accepted connection (deadlines, addresses)
	srv      *Server
	// br reads the client (through replyFlusher); it comes from the
	// server's pool and goes back when go-smtp reads no more (endRead);
	// later reads return rerr.
	br   *bufio.Reader
	rerr error
	tls  atomic.Pointer[tls.ConnectionState]

	wmu  sync.Mutex // guards cur, out and werr; Close may come from another goroutine
	cur  net.Conn   // what is read and written: Conn, or TLS over it
	out  []byte     // replies not yet written
	werr error      // the write that failed; later replies are dropped
	// handshake: the greeting is to be written at once, which does the
	// implicit TLS handshake (newCommandConn).
	handshake bool
	// outBuf is out's first array: most replies fit, without a new one
	// for each connection.
	outBuf [512]byte

	// got counts the octets read from the client, for the transaction
	// timeout's allowance for text still arriving (session.startTimer).
	got atomic.Int64

	pending []byte // a good command line not yet all handed to go-smtp
	mode    readMode
	dstate  int
	chunk   int64 // octets of the BDAT chunk still to pass
	text    bool  // the session reads this DATA's text (Text, text.go)
	textErr error // the read error that ended the text
	line    []byte

	// The command handed to go-smtp and the code of its reply, which is
	// applied to the state below before the next line is read.
	verb     string
	arg      string
	code     int
	answered bool // go-smtp's reply to verb has been applied
	// heard: the session's Mail or Rcpt ran for verb. When it did not,
	// go-smtp's own parser refused the command (a malformed path or
	// parameter), and that refusal is logged here, as the session
	// logs its own.
	heard bool
	// barePostmaster: this RCPT named "Postmaster" without a domain
	// (qualifyPostmaster gave it one), which no restriction refuses.
	barePostmaster bool
	// bareSender: this MAIL's sender as the client gave it, without a
	// domain, when qualifySender gave it Myorigin's ("" otherwise).
	bareSender string
	// saslRefusal is the reply that takes the place of go-smtp's 501
	// "Negotiation cancelled" when the command layer cancelled the SASL
	// exchange for the client (nextLine): RFC 4954's own codes.
	saslRefusal string
	// saidHelo: the client's greeting that was accepted was HELO, not
	// EHLO (Postfix's protocol name SMTP rather than ESMTP).
	saidHelo bool
	// deadlineSet: go-smtp has just set the idle timeout's read deadline
	// (its ReadTimeout is the same), before the read of a command line.
	deadlineSet bool
	ehloTLSAdv  bool // STARTTLS was added to this EHLO reply

	watchPipe, illPipelining bool        // pipelining.go
	rec                      *recordConn // under TLS, for the look-ahead
	sess                     *session    // go-smtp's, for checkData

	greeted     bool // HELO/EHLO accepted
	authed      bool // AUTH succeeded
	inMail      bool // MAIL accepted, transaction open
	rcpts       int  // recipients accepted
	rcptTried   bool // a RCPT was given in this transaction
	bdat        bool // a BDAT chunk was accepted in this transaction
	bdatOctets  int64
	sizeRefused bool // bdatsize.go
	errors      int  // 4xx and 5xx replies the client heard
	overshoot   int  // recipients refused past the limit in this transaction
	junk        int  // NOOP, VRFY and RSET commands
	closed      bool
	stop        stopWatch // Shutdown's wake-up (stopping.go)

	// chunkReader is the message reader of the last BDAT transaction,
	// set by the session's Data on go-smtp's goroutine for it.
	chunkReader atomic.Pointer[io.PipeReader]
}

func newCommandConn(srv *Server, nc net.Conn) *commandConn {
	c := &commandConn{Conn: nc, srv: srv, cur: nc, answered: true}
	c.out = c.outBuf[:0]
	c.watchPipe = srv.watchesPipelining()
	if srv.opts.ImplicitTLS && srv.opts.TLSConfig != nil {
		// The handshake happens as go-smtp writes its greeting, which
		// waits for the client's hello under this read deadline: the
		// greeting is written at once (Write), not queued until go-smtp
		// has set its own read deadline.
		nc.SetReadDeadline(time.Now().Add(srv.handshakeLimit()))
		c.cur = tls.Server(c.underTLS(), srv.opts.TLSConfig)
		c.handshake = true
	}
	c.br = srv.getReader(replyFlusher{c})
	srv.track(c)
	return c
}

// handshakeLimit bounds a TLS handshake (STARTTLS's, or implicit TLS's
// before the greeting): the session's idle timeout, as a client silent
// in the handshake is as idle as one silent between commands (Postfix's
// smtpd_starttls_timeout is smtpd_timeout's 300 s by default), or
// handshakeTimeout when the session has none.
func (srv *Server) handshakeLimit() time.Duration {
	if d := srv.opts.IdleTimeout; d > 0 {
		return d
	}
	return handshakeTimeout
}

// readBufSize is the client read buffer: a command line, or a block of
// message text.
const readBufSize = 16 << 10

// getReader takes a client read buffer from the pool, or makes one. The
// buffers are reused connection after connection: the proxy's clients
// often send one message per connection, and a new 16 KiB buffer for each
// was most of the garbage per message.
func (s *Server) getReader(r io.Reader) *bufio.Reader {
	if br, _ := s.readers.Get().(*bufio.Reader); br != nil {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufSize)
}

// replyFlusher is what the read buffer reads from: it writes the replies
// not yet written before it reads, and so before the read can wait.
type replyFlusher struct{ c *commandConn }

func (f replyFlusher) Read(p []byte) (int, error) {
	if err := f.c.flush(); err != nil {
		return 0, err
	}
	n, err := f.c.cur.Read(p)
	f.c.got.Add(int64(n))
	return n, err
}

// queue adds reply text to what flush writes. Past a few KiB (a client
// that pipelines many commands) it is written at once.
func (c *commandConn) queue(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.out = append(c.out, p...)
	if len(c.out) >= 4<<10 {
		return c.flushLocked()
	}
	return nil
}

// flush writes the queued replies.
func (c *commandConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

// flushNow writes the queued replies unless a write is under way (from
// the transaction's own goroutine, or a Close): it never waits for one.
func (c *commandConn) flushNow() {
	if c.wmu.TryLock() {
		c.flushLocked()
		c.wmu.Unlock()
	}
}

// flushLocked writes the queued replies, under the idle timeout (go-smtp's
// own write deadline for each reply is not used: see SetWriteDeadline).
func (c *commandConn) flushLocked() error {
	if c.werr != nil || len(c.out) == 0 {
		return c.werr
	}
	if d := c.srv.opts.IdleTimeout; d > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	_, err := c.cur.Write(c.out)
	c.out = c.out[:0]
	if err != nil {
		c.werr = err
	}
	return err
}

// SetWriteDeadline is go-smtp's, before each reply it writes; the reply
// is only queued, and flush sets the deadline for the write itself.
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

// TLSState reports the connection's TLS state once TLS is up.
func (c *commandConn) TLSState() (tls.ConnectionState, bool) {
	if st := c.tls.Load(); st != nil {
		return *st, true
	}
	if tc, ok := c.cur.(*tls.Conn); ok && c.srv.opts.ImplicitTLS {
		// Complete since go-smtp's greeting went out.
		st := tc.ConnectionState()
		return st, st.HandshakeComplete
	}
	return tls.ConnectionState{}, false
}

func (c *commandConn) tlsActive() bool {
	_, ok := c.TLSState()
	return ok
}

func (c *commandConn) offerTLS() bool {
	return c.srv.opts.TLSConfig != nil && !c.srv.opts.ImplicitTLS && c.tls.Load() == nil && !c.authed
}

// Close writes the replies still queued (go-smtp's 221 to QUIT, a 421)
// and, under TLS, a close_notify alert (as Postfix's SSL_shutdown does: a
// client such as openssl s_client otherwise reports the end as a
// truncation), within closeFlushTimeout, and closes the accepted
// connection. A Close from another goroutine (the transaction timeout, a
// shutdown) while go-smtp writes or flushes does not wait for it: the
// connection closes at once, as it would have without the queue.
func (c *commandConn) Close() error { return c.closeSaying("") }

// closeSaying is Close with a last reply, text, written after the replies
// queued: a 421 from another goroutine than go-smtp's (the transaction
// timeout), which go-smtp's own replies cannot follow.
func (c *commandConn) closeSaying(text string) error {
	c.srv.untrack(c)
	if c.wmu.TryLock() {
		if c.werr == nil {
			if text != "" {
				c.out = append(c.out, text+"\r\n"...)
			}
			c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			if len(c.out) > 0 {
				c.cur.Write(c.out)
				c.out = c.out[:0]
			}
			if tc, ok := c.cur.(*tls.Conn); ok {
				tc.CloseWrite()
			}
			if tc, ok := c.Conn.(*trackedConn); ok && tc.wasCut() {
				tc.linger() // the 421 read, not reset (stopping.go)
			}
		}
		c.werr = net.ErrClosed
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}

// closeFlushTimeout bounds the write of the last replies at Close.
const closeFlushTimeout = 5 * time.Second

// Write carries go-smtp's replies to the client and notes their code. The
// replies are queued, and written when the client is read next.
func (c *commandConn) Write(p []byte) (int, error) {
	n := len(p) // what go-smtp wrote, whatever is said in its place
	if c.closed || c.refusedBanned(p) {
		// The session ended with our own reply (textFailed, the error
		// limit, a ban); go-smtp's reply to its end is not sent.
		return n, nil
	}
	if len(p) >= 4 && (p[3] == ' ' || p[3] == '-') {
		if code, err := strconv.Atoi(string(p[:3])); err == nil {
			c.code = code
			if p[3] == ' ' && code >= 400 && c.verb != "" && !c.overshot(code, p) {
				c.errors++
			}
		}
	}
	idle := bytes.HasPrefix(p, []byte("421 4.4.2 Idle timeout"))
	p = c.wording(p)
	if idle {
		// A refusal the client hears, logged as the transaction
		// timeout's is and as Postfix logs "timeout after CMD".
		c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "timeout", string(bytes.TrimRight(p, "\r\n")))
	}
	if (c.verb == "MAIL" || c.verb == "RCPT") && !c.heard && len(p) >= 4 && p[3] == ' ' && c.code >= 400 {
		c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "command", string(bytes.TrimRight(p, "\r\n")),
			"command", c.verb)
	}
	if max := c.srv.opts.MaxMessageSize; max > 0 && c.verb == "EHLO" && len(p) == 10 && bytes.Equal(p[4:], []byte("SIZE\r\n")) {
		// go-smtp has no size limit (see New) and says SIZE without
		// one; the client is told the relay's (RFC 1870). go-smtp
		// writes one reply line per Write.
		if err := c.queue([]byte(string(p[:4]) + "SIZE " + strconv.FormatInt(max, 10) + "\r\n")); err != nil {
			return 0, err
		}
		return n, nil
	}
	err := c.queue(p)
	if c.handshake && err == nil {
		c.handshake = false
		if err = c.flush(); err != nil {
			// The implicit TLS handshake, as startTLS logs its own.
			c.srv.log.Info("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		}
	}
	if (c.code == 421 || c.code == 521) && len(p) >= 4 && p[3] == ' ' {
		// RFC 5321 section 3.8: a server that says 421 closes the
		// connection; so does one that says 521 (RFC 7504), and
		// Postfix after an access table's "421 text" or "521 text".
		// In proxy mode the session passes on the upstream's 421 (to
		// MAIL, RCPT or the final dot), and the client, who takes it
		// as the end, must not find the session still reading
		// commands.
		c.closed = true
	}
	if err == nil && c.verb == "EHLO" && !c.ehloTLSAdv && c.offerTLS() && bytes.HasPrefix(p, []byte("250-")) {
		// go-smtp does not know about our STARTTLS, so the keyword
		// goes in here.
		c.ehloTLSAdv = true
		err = c.queue([]byte("250-STARTTLS\r\n"))
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// recipientOvershootLimit is how many recipients past the limit a transaction
// may send before each one counts as an error: Postfix's
// smtpd_recipient_overshoot_limit.
const recipientOvershootLimit = 1000

// overshot reports whether p is go-smtp's refusal of a recipient past the
// limit (452 4.5.3) that does not count as an error. RFC 5321 section
// 4.5.3.1.8 has the client send the rest in another transaction; counted
// as errors, twenty of them would end the session before its DATA, and a
// client could never deliver a message to more than MaxRecipients+19.
func (c *commandConn) overshot(code int, p []byte) bool {
	if c.verb != "RCPT" || code != 452 || !bytes.HasPrefix(p[4:], []byte("4.5.3 ")) {
		return false
	}
	c.overshoot++
	return c.overshoot <= recipientOvershootLimit
}

// wording says as Postfix does the replies that go-smtp words its own way.
// The EHLO and HELO replies start with the server's name (RFC 5321 section
// 4.1.1.1: a client compares it with its own to find a loop; go-smtp puts
// "Hello" there), MAIL and RCPT carry RFC 3463's codes for addresses (2.1.0,
// 2.1.5), a malformed parameter value is 501 (RFC 5321 section 4.2.2: a
// syntax error in the arguments; go-smtp says 500, "command unrecognized",
// to a bad AUTH=), a SASL exchange the command layer ended for the client
// hears saslRefusal, a login RFC 4954's 235 2.7.0, and the idle timeout is the text docs/limits.md gives.
func (c *commandConn) wording(p []byte) []byte {
	switch {
	case c.verb == "AUTH" && c.saslRefusal != "" && bytes.HasPrefix(p, []byte("501 ")):
		r := c.saslRefusal
		c.saslRefusal = ""
		return []byte(r + "\r\n")
	case c.verb == "AUTH" && bytes.HasPrefix(p, []byte("235 ")):
		// RFC 4954 section 6: 2.7.0; go-smtp says 2.0.0.
		return []byte("235 2.7.0 Authentication successful\r\n")
	case (c.verb == "MAIL" || c.verb == "RCPT") && bytes.HasPrefix(p, []byte("500 5.5.4 ")):
		return append([]byte("501"), p[3:]...)
	case c.verb == "EHLO" && bytes.HasPrefix(p, []byte("250-Hello ")):
		c.saidHelo = false
		return []byte("250-" + c.srv.opts.Domain + "\r\n")
	case c.verb == "HELO" && bytes.HasPrefix(p, []byte("250 2.0.0 Hello ")):
		c.saidHelo = true
		return []byte("250 " + c.srv.opts.Domain + "\r\n")
	case c.verb == "MAIL" && bytes.HasPrefix(p, []byte("250 2.0.0 Roger, accepting mail from ")):
		return []byte("250 2.1.0 Ok\r\n")
	case c.verb == "RCPT" && bytes.HasPrefix(p, []byte("250 2.0.0 I'll make sure ")):
		return []byte("250 2.1.5 Ok\r\n")
	case c.verb == "" && c.srv.opts.Banner != "" && bytes.HasPrefix(p, []byte("220 ")):
		return []byte("220 " + c.srv.opts.Banner + "\r\n")
	case bytes.HasPrefix(p, []byte("421 4.4.2 Idle timeout")):
		return []byte("421 4.4.2 " + c.srv.opts.Domain + " Error: timeout exceeded\r\n")
	}
	return c.sizeWording(p)
}

// reply writes one of our own replies, and counts it if it is an error.
func (c *commandConn) reply(text string) error {
	if text[0] == '4' || text[0] == '5' {
		c.errors++
	}
	return c.queue([]byte(text + "\r\n"))
}

// Read hands go-smtp the next good command line, or message text. An
// error ends go-smtp's session: the read buffer then goes back to the
// pool, and later reads return the same error.
func (c *commandConn) Read(p []byte) (int, error) {
	if c.br == nil {
		return 0, c.rerr
	}
	n, err := c.read(p)
	if err != nil {
		c.endRead(err)
	}
	return n, err
}

// endRead gives the read buffer back to the pool once go-smtp reads no
// more: Read returns err from now on.
func (c *commandConn) endRead(err error) {
	if c.br == nil {
		return
	}
	c.rerr = err
	c.br.Reset(nil)
	c.srv.readers.Put(c.br)
	c.br = nil
}

// SetReadDeadline is go-smtp's, before it reads the next command. It fails
// on a closed connection, and go-smtp's session then ends without another
// Read (after QUIT, go-smtp closes the connection itself): the read buffer
// goes back to the pool here then. Only go-smtp's goroutine calls it.
func (c *commandConn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	if err != nil {
		c.endRead(err)
	}
	c.deadlineSet = err == nil
	return err
}

func (c *commandConn) read(p []byte) (int, error) {
	if c.closed {
		return 0, io.EOF
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if !c.answered && c.mode == modeCommand {
		c.applyReply()
	}
	switch c.mode {
	case modeData:
		if c.text {
			// The session stopped reading the text it took: the
			// rest goes, and go-smtp sees the end marker.
			if err := c.drainText(p); err != nil {
				return 0, err
			}
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		n, err := c.readData(p)
		if err != nil {
			return n, c.textFailed(err)
		}
		return n, nil
	case modeChunk:
		if d := c.srv.opts.IdleTimeout; d > 0 && c.br.Buffered() == 0 {
			c.Conn.SetReadDeadline(time.Now().Add(d))
		}
		if int64(len(p)) > c.chunk {
			p = p[:c.chunk]
		}
		n, err := c.br.Read(p)
		c.chunk -= int64(n)
		if c.chunk == 0 {
			c.mode = modeCommand
		}
		if err == io.EOF {
			// The client went away in the middle of the chunk.
			// go-smtp copies a chunk through an io.LimitReader, for
			// which io.EOF is the chunk's end: the short chunk of a
			// BDAT LAST was taken for the whole, and the message cut
			// there was accepted and relayed.
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return n, c.textFailed(err)
		}
		return n, nil
	}
	for {
		if c.errors >= c.srv.opts.HardErrorLimit {
			// Postfix's smtpd_hard_error_limit: said before the next
			// command is read, so that nothing pipelined behind the
			// last refusal is run.
			text := "421 4.7.0 " + c.srv.opts.Domain + " Error: too many errors"
			c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "limit", text)
			c.reply(text)
			c.closed = true
			return 0, io.EOF
		}
		line, err := c.nextLine(maxAuthLine)
		if err != nil {
			if c.stopped(err) {
				return 0, io.EOF
			}
			return 0, err
		}
		if line == nil {
			if c.closed {
				return 0, io.EOF
			}
			continue // refused and answered
		}
		if c.verb == "STARTTLS" {
			c.verb = ""
			if err := c.startTLS(); err != nil {
				c.closed = true
				return 0, io.EOF
			}
			continue
		}
		c.pending = line
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
}

// awaitChunkReader waits, before go-smtp sees the first BDAT of a
// transaction, until go-smtp's goroutine for the previous BDAT transaction
// is done. go-smtp (v0.25) runs Data for BDAT in a goroutine that sends
// its result to c.dataResult, a field it reads only then: when RSET or
// EHLO aborted that transaction, the send can land in the channel of the
// next one, whose BDAT LAST then answers the aborted transaction's
// "554 5.0.0 ... message transmission aborted" and resets the session
// while the new message is being committed, without its envelope. The
// goroutine closes the reader right after its send, so a closed reader
// means the send has happened. go-smtp has closed the writer by now (the
// transaction ended: LAST, RSET, EHLO or an error), so Read never waits
// for data; the wait is bounded all the same.
func (c *commandConn) awaitChunkReader() {
	pr := c.chunkReader.Swap(nil)
	if pr == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		// Exits when the reader is closed, or when go-smtp closes
		// the pipe as the connection ends.
		defer close(done)
		var b [1]byte
		for {
			if _, err := pr.Read(b[:]); errors.Is(err, io.ErrClosedPipe) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.srv.log.Warn("BDAT: the previous transaction's reader was not closed", "client", c.RemoteAddr().String())
	}
}

// textFailed ends the session when the client's message text cannot be
// read. A client that went silent in the middle of DATA or BDAT hears
// 421 4.4.2, as from Postfix, and nothing else: the reply go-smtp would
// give to the failed transaction (554 5.0.0 with the read error's text, a
// permanent refusal of a message that a retry would deliver) is not
// written, and the connection closes. A client that went away hears
// nothing. The message is never accepted either way.
func (c *commandConn) textFailed(err error) error {
	c.closed = true
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		text := "421 4.4.2 " + c.srv.opts.Domain + " Error: timeout exceeded"
		if t := c.shutdownText(); t != "" {
			text = t // the grace of a shutdown ran out (stopping.go)
		}
		c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "data", text)
		c.reply(text)
	}
	return err
}

// readLine reads one line of at most max octets, its LF included. A longer
// line is read to its end and thrown away but for its first max octets,
// which name its command; tooLong is then true.
func (c *commandConn) readLine(max int) (line []byte, tooLong bool, err error) {
	if d := c.srv.opts.IdleTimeout; d > 0 && !c.deadlineSet {
		c.Conn.SetReadDeadline(time.Now().Add(d))
	}
	c.deadlineSet = false
	if !c.awaitCommand() {
		return nil, false, errStopping
	}
	defer c.commandRead()
	c.line = c.line[:0]
	for {
		frag, err := c.br.ReadSlice('\n')
		if len(c.line)+len(frag) <= max && !tooLong {
			c.line = append(c.line, frag...)
		} else if !tooLong {
			// The head, never a later piece: the verb is at the start.
			c.line = append(c.line, frag[:max-len(c.line)]...)
			tooLong = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return nil, tooLong, err
		}
		return c.line, tooLong, nil
	}
}

// nextLine reads the next line from the client and returns it if it goes
// to go-smtp, or nil after answering it here.
func (c *commandConn) nextLine(max int) ([]byte, error) {
	saslResponse := c.verb == "AUTH" && c.code == 334
	line, tooLong, err := c.readLine(max)
	if err != nil {
		return nil, err
	}
	if saslResponse {
		if tooLong {
			// go-smtp is waiting for this response; "*" cancels the
			// exchange (RFC 4954), and go-smtp's 501 to it is said
			// as RFC 4954 section 6 has it.
			c.srv.log.Info("SASL response too long", "client", c.RemoteAddr().String())
			c.saslRefusal = "500 5.5.6 Error: authentication exchange line too long"
			return []byte("*\r\n"), nil
		}
		if resp := bytes.TrimRight(line, "\r\n"); !bytes.Equal(resp, []byte("*")) && !isBase64(string(resp)) {
			// go-smtp would answer 454 4.7.0, "try again later",
			// to a response that can never decode; "*" ends the
			// exchange, with the 501 5.5.2 that RFC 4954 section
			// 4 requires.
			c.saslRefusal = "501 5.5.2 Error: cannot decode response"
			return []byte("*\r\n"), nil
		}
		c.code = 0
		return bytes.Clone(line), nil
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	octets := len(text) + 2 // as sent: trailing blanks count toward the limit
	if t := strings.TrimRight(text, " \t"); len(t) < len(text) && t != "" {
		// "QUIT " and "DATA\t": go-smtp takes a five-octet line for a
		// mangled command; Postfix ignores the trailing space.
		text, line = t, []byte(t+"\r\n")
	}
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)
	c.lookAhead(verb)
	refuse := func(r string) ([]byte, error) {
		c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "command", r, "command", maillogVerb(verb))
		if strings.HasPrefix(r, "421 ") {
			c.closed = true // RFC 5321 section 3.8: said, then closed
		}
		return nil, c.reply(r)
	}
	switch {
	case tooLong || octets > lineLimit(verb):
		return refuse(c.unreadChunk(verb, "500 5.5.2 Error: command line too long"))
	case strings.ContainsAny(text, "\x00\r"):
		// A NUL or a CR that does not end the line: the whole
		// command is refused, as a line that some other server
		// would read differently.
		return refuse(c.unreadChunk(verb, "500 5.5.2 Error: NUL or bare CR in command"))
	case text == "":
		return refuse("500 5.5.2 Error: bad syntax")
	}
	if r := c.needTLS(verb); r != "" {
		return refuse(r)
	}
	if r := c.check(verb, arg); r != "" {
		return refuse(r)
	}
	if done, err := c.checkData(verb, arg); done {
		return nil, err
	}
	if rset := c.bdatOverLimit(verb, arg); rset != nil {
		return rset, nil
	}
	bare := false
	switch verb {
	case "NOOP", "VRFY", "RSET":
		// Postfix's smtpd_junk_command_limit: past it, each one
		// counts as an error.
		c.junk++
		if c.junk > c.srv.opts.JunkCommandLimit {
			c.errors++
		}
	case "MAIL":
		line = dropWideSize(arg, line)
		line, c.bareSender = c.qualifySender(arg, line)
	case "RCPT":
		line, bare = c.qualifyPostmaster(arg, line)
	case "BDAT":
		if !c.bdat {
			c.awaitChunkReader()
		}
		size, _, _ := bdatArgs(arg)
		c.mode, c.chunk = modeChunk, size
		if size == 0 {
			c.mode = modeCommand
		}
	}
	c.verb, c.arg, c.code, c.answered, c.ehloTLSAdv, c.heard = verb, arg, 0, false, false, false
	c.barePostmaster = bare
	if verb == "STARTTLS" {
		c.answered = true
		return []byte{}, nil
	}
	return bytes.Clone(line), nil
}

// check applies the sequence and syntax rules to a command and returns the
// reply that refuses it, or "" to let go-smtp run it.
func (c *commandConn) check(verb, arg string) string {
	arg = strings.TrimSpace(arg)
	switch verb {
	case "EHLO", "HELO":
		if arg == "" {
			return "501 5.5.4 Syntax: " + verb + " hostname"
		}
		if !validHelo(arg) {
			return "501 5.5.2 Error: " + verb + " argument is neither a domain nor an address literal"
		}
	case "MAIL":
		switch {
		case !c.greeted:
			return "503 5.5.1 Error: send HELO/EHLO first"
		case c.inMail:
			return "503 5.5.1 Error: nested MAIL command"
		case !hasPrefixFold(arg, "FROM:"):
			return "501 5.5.4 Syntax: MAIL FROM:<address>"
		case twoAts(arg[len("FROM:"):]):
			return "501 5.1.7 Bad sender address syntax"
		}
		if r := pathRefusal(arg[len("FROM:"):], false); r != "" && (!unqualified(r) || c.srv.opts.Myorigin == "") {
			return r
		}
		return c.checkParams(arg[len("FROM:"):], mailParams)
	case "RCPT":
		switch {
		case !c.inMail:
			return "503 5.5.1 Error: need MAIL command"
		case c.bdat:
			// Between the chunks of a message (RFC 3030 section 3): a
			// bad sequence, never go-smtp's 502; the BDAT goes on.
			return "503 5.5.1 Error: RCPT after BDAT"
		case !hasPrefixFold(arg, "TO:"):
			return "501 5.5.4 Syntax: RCPT TO:<address>"
		case twoAts(arg[len("TO:"):]):
			c.rcptTried = true
			return "501 5.1.3 Bad recipient address syntax"
		}
		c.rcptTried = true
		if r := pathRefusal(arg[len("TO:"):], true); r != "" {
			return r
		}
		return c.checkParams(arg[len("TO:"):], rcptParams)
	case "DATA", "BDAT":
		if verb == "DATA" && arg != "" {
			return "501 5.5.4 Syntax: DATA"
		}
		var size int64
		if verb == "BDAT" {
			var ok bool
			if size, _, ok = bdatArgs(arg); !ok {
				n, counted := bdatCount(arg)
				switch {
				case bdatOutOfRange(arg):
					// Its octets follow, and they cannot be counted:
					// the rest of the session would take them for
					// commands (a smuggling route). Postfix reads and
					// drops any size its file offsets hold.
					return "421 4.3.4 " + c.srv.opts.Domain + " Error: BDAT chunk size out of range; closing connection"
				case !counted:
					// No size at all ("BDAT -1"): the same, as
					// Postfix, which answers 521 and closes.
					return "421 4.5.4 " + c.srv.opts.Domain + " Error: BDAT without a chunk size; closing connection"
				}
				// A size and a bad second argument: the chunk
				// follows whatever the reply, and is no command.
				io.CopyN(io.Discard, c.br, n)
				return "501 5.5.4 Syntax: BDAT size [LAST]"
			}
		}
		r := ""
		switch {
		case verb == "DATA" && c.bdat:
			// RFC 3030 section 3: DATA after BDAT in one
			// transaction is a bad sequence.
			r = "503 5.5.1 Error: DATA after BDAT"
		case !c.inMail:
			r = "503 5.5.1 Error: need RCPT command"
		case c.rcpts == 0 && c.rcptTried:
			r = "554 5.5.1 Error: no valid recipients"
		case c.rcpts == 0:
			r = "503 5.5.1 Error: need RCPT command"
		}
		if r != "" && size > 0 {
			// The chunk follows its command whatever the reply.
			io.CopyN(io.Discard, c.br, size)
		}
		return r
	case "AUTH":
		switch {
		case c.srv.opts.Auth == nil:
			// Not offered: go-smtp would answer 502 5.7.0, or 454
			// (try again) to a bad initial response.
			return "503 5.5.1 Error: authentication not enabled"
		case !c.greeted:
			return "503 5.5.1 Error: send HELO/EHLO first"
		case c.inMail:
			return "503 5.5.1 Error: MAIL transaction in progress"
		case arg == "", len(strings.Fields(arg)) > 2:
			// RFC 4954 section 4: a mechanism and at most an initial
			// response; go-smtp would ignore the words after them.
			return "501 5.5.4 Syntax: AUTH mechanism"
		}
		// An initial response that is not base64 (RFC 4954 section
		// 4): go-smtp would answer 454 4.7.0, "try again later".
		if f := strings.Fields(arg); len(f) == 2 && f[1] != "=" && !isBase64(f[1]) {
			// Unless the session would refuse the command before
			// reading the response: TLS first (its Auth), or a
			// mechanism the server never offers, 504 (section 4).
			o := c.srv.opts
			switch {
			case !c.tlsActive() && o.RequireTLS:
				return "530 5.7.0 Must issue a STARTTLS command first"
			case !c.tlsActive() && !o.AllowInsecureAuth:
				return "523 5.7.10 TLS is required"
			case !c.authed && !slices.Contains(o.Auth.Mechanisms(true), strings.ToUpper(f[0])):
				return "504 5.7.4 Unsupported authentication mechanism"
			}
			return "501 5.5.2 Error: cannot decode response"
		}
	case "STARTTLS":
		switch {
		case arg != "":
			return "501 5.5.4 Syntax: STARTTLS"
		case c.tlsActive():
			return "554 5.5.1 Error: TLS already active"
		case c.authed:
			// A login in plain text (auth.allow_insecure) would
			// outlive the handshake, which RFC 3207 forbids.
			return "503 5.5.1 Error: already authenticated"
		case !c.offerTLS():
			return "502 5.5.1 Error: command not implemented"
		}
	case "RSET", "QUIT":
		if arg != "" {
			return "501 5.5.4 Syntax: " + verb
		}
	case "VRFY":
		if arg == "" {
			return "501 5.5.4 Syntax: VRFY address"
		}
	case "NOOP":
	case "EXPN", "HELP", "TURN", "ETRN", "SEND", "SOML", "SAML":
		// Commands of RFC 5321 (and 821) the relay knows and does not
		// implement: 502 (section 4.2.4), as Postfix says to ETRN
		// turned off.
		return "502 5.5.1 Error: command not implemented"
	default:
		// Section 4.2.4: 500 for a command not recognized, as Postfix
		// says.
		return "500 5.5.2 Error: command not recognized"
	}
	return ""
}

// tlsFirst are the commands that hear 530 where TLS is required and not
// yet started: RFC 3207 section 4 says the server SHOULD so answer every
// command but EHLO, NOOP, STARTTLS and QUIT, as Postfix's
// smtpd_tls_security_level = encrypt does. HELO is let through too; MAIL
// and AUTH have refusals of their own (530 at MAIL and AUTH, in the session), a
// BDAT's chunk must be read first, and an unknown command is 500.
var tlsFirst = map[string]bool{"RCPT": true, "DATA": true, "RSET": true, "VRFY": true, "EXPN": true,
	"HELP": true, "TURN": true, "ETRN": true, "SEND": true, "SOML": true, "SAML": true}

// needTLS is the refusal of a tlsFirst command before TLS where TLS is
// required, or "".
func (c *commandConn) needTLS(verb string) string {
	if !c.srv.opts.RequireTLS || !tlsFirst[verb] || c.tlsActive() {
		return ""
	}
	return "530 5.7.0 Must issue a STARTTLS command first"
}

// The ESMTP parameters of MAIL and RCPT that the relay implements (RFC
// 1870, 6152, 6531, 4954, 3461); go-smtp knows no others either.
var (
	mailParams = []string{"SIZE", "BODY", "SMTPUTF8", "AUTH", "RET", "ENVID"}
	rcptParams = []string{"NOTIFY", "ORCPT"}
)

// dsnLimits are the longest values RFC 3461 allows the DSN parameters,
// xtext-encoded: ENVID 100 characters (section 4.4), ORCPT 500 (4.2).
var dsnLimits = map[string]int{"ENVID": 100, "ORCPT": 500}

// checkParams refuses a parameter of MAIL or RCPT that the relay does not
// implement with 555 5.5.4 (RFC 5321 section 4.1.1.11; go-smtp says 500,
// "command unrecognized"), and a declared SIZE over the size limit with
// 552 5.3.4 (RFC 1870 section 6), including a valid size-value of up to 20
// digits that does not fit in 64 bits (go-smtp says 501), and one the
// spool has no room for with 452 4.3.1 (section 6.1, as Postfix: before
// the client sends the text, not after it); a parameter
// given twice, or an ENVID or ORCPT longer than RFC 3461 allows, with 501
// 5.5.4. A malformed path is left to go-smtp's parser.
func (c *commandConn) checkParams(rest string, known []string) string {
	_, params, ok := splitPath(rest)
	if !ok {
		return ""
	}
	seen := map[string]bool{}
	for _, p := range strings.Fields(params) {
		key, value, hasValue := strings.Cut(p, "=")
		key = strings.ToUpper(key)
		if !slices.Contains(known, key) || (key == "SMTPUTF8" && hasValue) ||
			(key == "BODY" && strings.EqualFold(value, "BINARYMIME")) {
			// SMTPUTF8 takes no value (RFC 6531 section 3.4);
			// go-smtp took "SMTPUTF8=no" for SMTPUTF8. BINARYMIME
			// (RFC 3030) is not offered: go-smtp said 504, which
			// MAIL never answers (RFC 5321 section 4.3.2).
			return "555 5.5.4 Unsupported option: " + printable(p)
		}
		if seen[key] {
			// RFC 3461 sections 4.1 to 4.4 allow each DSN parameter
			// once, and no parameter means two things; go-smtp
			// keeps the last. Postfix refuses the second.
			return "501 5.5.4 Duplicate " + key + " parameter"
		}
		seen[key] = true
		if limit := dsnLimits[key]; limit > 0 && len(value) > limit {
			// An upstream that checks (Postfix) refuses the whole
			// transaction for it later, which bounces the message.
			return "501 5.5.4 " + key + " parameter too long (RFC 3461 allows " + strconv.Itoa(limit) + " characters)"
		}
		if key != "SIZE" || value == "" || len(value) > 20 || strings.Trim(value, "0123456789") != "" {
			continue
		}
		n, err := strconv.ParseUint(value, 10, 64)
		if max := c.srv.opts.MaxMessageSize; max > 0 && (err != nil || n > uint64(max)) {
			return "552 5.3.4 Max message size exceeded"
		}
		if err == nil && c.srv.opts.Proxy == nil && c.srv.opts.Spool != nil && !c.srv.opts.Spool.Room(n) {
			return "452 4.3.1 Insufficient system storage"
		}
	}
	return ""
}

// qualifyPostmaster gives "RCPT TO:<Postmaster>" the relay's domain. RFC
// 5321 section 4.5.1: a relay MUST accept the reserved mailbox postmaster
// without a domain; go-smtp's parser refuses an address without one, and
// Postfix appends its own name ($myorigin) to it as well.
func (c *commandConn) qualifyPostmaster(arg string, line []byte) ([]byte, bool) {
	path, params, ok := splitPath(strings.TrimSpace(arg)[len("TO:"):])
	local, bracketed := strings.CutPrefix(path, "<")
	local = strings.TrimSuffix(local, ">")
	if !ok || !strings.EqualFold(local, "postmaster") || bracketed != strings.HasSuffix(path, ">") {
		return line, false
	}
	return []byte("RCPT TO:<" + local + "@" + c.srv.opts.Domain + ">" + params + "\r\n"), true
}

// applyReply follows go-smtp's reply to the command it was handed.
func (c *commandConn) applyReply() {
	c.answered = true
	ok := c.code/100 == 2
	switch c.verb {
	case "EHLO", "HELO":
		if ok {
			c.greeted = true
			c.endTransaction()
		}
	case "MAIL":
		if ok {
			c.inMail, c.rcpts, c.rcptTried = true, 0, false
		}
	case "RCPT":
		if ok {
			c.rcpts++
		}
	case "RSET":
		c.endTransaction()
	case "AUTH":
		c.authed = c.authed || c.code == 235
	case "DATA":
		if c.code == 354 {
			c.mode, c.dstate = modeData, dBeginLine
			c.verb, c.code, c.answered = "DATA.", 0, false
		}
	case "DATA.":
		// go-smtp resets after the reply to the final dot.
		c.endTransaction()
		c.forgive(ok)
	case "BDAT":
		_, last, _ := bdatArgs(c.arg)
		if last || !ok {
			c.endTransaction()
			c.forgive(ok && last)
		} else {
			c.bdat = true
		}
	}
}

func (c *commandConn) endTransaction() {
	c.inMail, c.rcpts, c.rcptTried, c.bdat = false, 0, false, false
	c.overshoot = 0 // per transaction, as Postfix's rcpt_reset does
}

// forgive clears the session's errors and junk commands once a message
// is accepted, as Postfix's smtpd does: the limits are for a client that
// gets nowhere, not for one that sends RSET or has a recipient refused
// before each of many messages on one connection.
func (c *commandConn) forgive(accepted bool) {
	if accepted {
		c.errors, c.junk = 0, 0
	}
}

// readData passes message text to go-smtp up to and including the final
// dot, and no further: what follows is commands again. Lines may be of any
// length; the size limit is go-smtp's, and its reply comes after the dot.
func (c *commandConn) readData(p []byte) (int, error) {
	if c.br.Buffered() == 0 {
		if d := c.srv.opts.IdleTimeout; d > 0 {
			// Each read of a long message gets the idle timeout,
			// not the whole message.
			c.Conn.SetReadDeadline(time.Now().Add(d))
		}
		if _, err := c.br.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := c.br.Peek(min(len(p), c.br.Buffered()))
	n := 0
	for n < len(buf) {
		if c.dstate == dData {
			// Inside a line only a CR can change the state.
			i := bytes.IndexByte(buf[n:], '\r')
			if i < 0 {
				n = len(buf)
				break
			}
			n += i
		}
		c.dstate = nextDataState(c.dstate, buf[n])
		n++
		if c.dstate == dEnd {
			c.mode = modeCommand
			break
		}
	}
	copy(p, buf[:n])
	c.br.Discard(n)
	return n, nil
}

// startTLS answers STARTTLS and turns the connection into TLS (RFC 3207).
// Whatever the client sent after the command in plain text is thrown away
// (CVE-2011-0411), and the session starts again from EHLO.
func (c *commandConn) startTLS() error {
	if err := c.reply("220 2.0.0 Ready to start TLS"); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		c.srv.log.Info("plain text after STARTTLS discarded", "client", c.RemoteAddr().String(), "bytes", c.br.Buffered())
	}
	tc := tls.Server(c.underTLS(), c.srv.opts.TLSConfig)
	c.Conn.SetDeadline(time.Now().Add(c.srv.handshakeLimit()))
	if err := tc.Handshake(); err != nil {
		c.srv.log.Info("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		return err
	}
	c.Conn.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.tls.Store(&st)
	c.wmu.Lock()
	c.cur = tc
	c.wmu.Unlock()
	c.br.Reset(replyFlusher{c})
	c.greeted = false
	c.endTransaction()
	return nil
}
