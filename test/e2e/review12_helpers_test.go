package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream is an SMTP server for review 12's checks that keeps each
// message's text exactly as it came over the wire, still dot-stuffed, and
// every command line of every connection, so that a relay's dot-stuffing,
// line endings and session state can be checked octet for octet (the
// harness's FakeSMTP unstuffs and ends the text at ".\n" as well).
type rawUpstream struct {
	t  testing.TB
	ln net.Listener

	mu    sync.Mutex
	conns int
	msgs  []rawMsg
	lines map[int][]string // each connection's command lines, in order
	// mailReply, if set, answers MAIL on connection conn, the n-th MAIL
	// there (from 1); "" is the default 250.
	mailReply func(conn, n int) string
	// rcptReply, if set, answers RCPT for an address; "" is 250.
	rcptReply func(conn int, addr string) string
	// dotClose closes each connection after its reply to a final dot.
	dotClose bool
	// idle closes a connection that sends nothing for this long.
	idle time.Duration
	// ehlo, if set, is the EHLO reply's lines after the first on
	// connection conn (the default is PIPELINING, 8BITMIME, SMTPUTF8 and
	// SIZE 0).
	ehlo func(conn int) []string
	// authOK accepts every AUTH PLAIN with an initial response (235); the
	// line is kept with the others. Without it AUTH is not recognized.
	authOK bool
	// authReply, if set, answers every AUTH (its lines joined by CRLF):
	// a smarthost refusing the relay's login.
	authReply string
}

// rawMsg is one message the upstream accepted.
type rawMsg struct {
	conn  int
	from  string
	mail  string // the MAIL command's argument, parameters and all
	rcpts []string
	raw   []byte // between the 354 and the final ".\r\n", as sent
	reply string
}

func newRawUpstream(t testing.TB) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{t: t, ln: ln, lines: map[int][]string{}, idle: 30 * time.Second}
	t.Cleanup(func() { ln.Close() })
	go u.accept()
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) accept() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns++
		n := u.conns
		u.mu.Unlock()
		go u.serve(c, n)
	}
}

func (u *rawUpstream) serve(c net.Conn, conn int) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n") }
	flush := func() bool {
		if r.Buffered() == 0 {
			return w.Flush() == nil
		}
		return true
	}
	say("220 raw.relaykeeper.test ESMTP raw")
	w.Flush()
	var from, mailArg string
	var rcpts []string
	inTx := false
	mails := 0
	for {
		u.mu.Lock()
		idle := u.idle
		u.mu.Unlock()
		c.SetReadDeadline(time.Now().Add(idle))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		u.mu.Lock()
		u.lines[conn] = append(u.lines[conn], line)
		u.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		closing := false // a 421 from a reply hook ends the session
		switch strings.ToUpper(verb) {
		case "EHLO":
			inTx = false
			ext := []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 0"}
			u.mu.Lock()
			if u.ehlo != nil {
				ext = u.ehlo(conn)
			}
			u.mu.Unlock()
			if len(ext) == 0 {
				say("250 raw.relaykeeper.test")
				break
			}
			say("250-raw.relaykeeper.test")
			for i, e := range ext {
				if i == len(ext)-1 {
					say("250 " + e)
				} else {
					say("250-" + e)
				}
			}
		case "HELO":
			inTx = false
			say("250 raw.relaykeeper.test")
		case "MAIL":
			if inTx {
				say("503 5.5.1 Error: nested MAIL command")
				break
			}
			mails++
			rep := hookReply(u, &u.mailReply, conn, mails, "250 2.1.0 Ok")
			say(rep)
			closing = strings.HasPrefix(rep, "421")
			if strings.HasPrefix(rep, "2") {
				inTx = true
				a, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "FROM:"), "from:"), " ")
				from, rcpts, mailArg = strings.Trim(a, "<>"), nil, arg
			}
		case "RCPT":
			if !inTx {
				say("503 5.5.1 Error: need MAIL command")
				break
			}
			a, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "TO:"), "to:"), " ")
			addr := strings.Trim(a, "<>")
			rep := hookReply(u, &u.rcptReply, conn, addr, "250 2.1.5 Ok")
			say(rep)
			closing = strings.HasPrefix(rep, "421")
			if strings.HasPrefix(rep, "2") {
				rcpts = append(rcpts, addr)
			}
		case "DATA":
			if !inTx || len(rcpts) == 0 {
				say("503 5.5.1 Error: need RCPT command")
				break
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			w.Flush()
			var raw bytes.Buffer
			for {
				c.SetReadDeadline(time.Now().Add(idle))
				l, err := r.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if err == nil && string(l) == ".\r\n" {
					break
				}
				raw.Write(l)
			}
			u.mu.Lock()
			n := len(u.msgs) + 1
			rep := fmt.Sprintf("250 2.0.0 Ok: queued as RAW%06d", n)
			u.msgs = append(u.msgs, rawMsg{conn: conn, from: from, mail: mailArg, rcpts: rcpts, raw: raw.Bytes(), reply: rep})
			u.mu.Unlock()
			say(rep)
			inTx = false
			u.mu.Lock()
			dc := u.dotClose
			u.mu.Unlock()
			if dc {
				w.Flush()
				return
			}
		case "RSET":
			inTx = false
			say("250 2.0.0 Ok")
		case "NOOP":
			say("250 2.0.0 Ok")
		case "AUTH":
			u.mu.Lock()
			ok, refuse := u.authOK, u.authReply
			u.mu.Unlock()
			if refuse != "" {
				say(refuse)
			} else if ok && strings.HasPrefix(strings.ToUpper(arg), "PLAIN ") {
				say("235 2.7.0 Authentication successful")
			} else {
				say("502 5.5.2 Error: command not recognized")
			}
		case "QUIT":
			say("221 2.0.0 Bye")
			w.Flush()
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
		if closing {
			w.Flush()
			return
		}
		if !flush() {
			return
		}
	}
}

// hookReply is the reply a hook (read under u.mu) gives for a command on
// connection conn, or def when the hook is unset or gives "".
func hookReply[A any](u *rawUpstream, hook *func(int, A) string, conn int, a A, def string) string {
	u.mu.Lock()
	f := *hook
	u.mu.Unlock()
	if f != nil {
		if rep := f(conn, a); rep != "" {
			return rep
		}
	}
	return def
}

func (u *rawUpstream) messages() []rawMsg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawMsg(nil), u.msgs...)
}

func (u *rawUpstream) connLines() map[int][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := map[int][]string{}
	for k, v := range u.lines {
		m[k] = append([]string(nil), v...)
	}
	return m
}

func (u *rawUpstream) connections() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// waitFrom waits for the message from a sender.
func (u *rawUpstream) waitFrom(from string, timeout time.Duration) (rawMsg, bool) {
	var m rawMsg
	ok := waitFor(timeout, func() bool {
		for _, x := range u.messages() {
			if x.from == from {
				m = x
				return true
			}
		}
		return false
	})
	return m, ok
}

// wireProblems checks text as sent after DATA: CRLF line endings only, and
// no line that is a lone "." (it would have ended the text). It returns
// the text unstuffed, as a compliant server reads it.
func wireText(raw []byte) (text []byte, problems []string) {
	for i, b := range raw {
		switch {
		case b == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n'):
			problems = append(problems, fmt.Sprintf("bare CR at %d", i))
		case b == '\n' && (i == 0 || raw[i-1] != '\r'):
			problems = append(problems, fmt.Sprintf("bare LF at %d", i))
		}
	}
	if len(raw) > 0 && !bytes.HasSuffix(raw, []byte("\r\n")) {
		problems = append(problems, "text does not end with CRLF")
	}
	for len(raw) > 0 {
		i := bytes.Index(raw, []byte("\r\n"))
		line := raw
		if i >= 0 {
			line, raw = raw[:i+2], raw[i+2:]
		} else {
			raw = nil
		}
		if line[0] == '.' {
			line = line[1:]
		}
		text = append(text, line...)
	}
	if len(problems) > 5 {
		problems = append(problems[:5], "...")
	}
	return text, problems
}

var (
	relayStampRE = regexp.MustCompile(`(?m)^(Message-ID: <\d{14}\.[^@>\s]+@[^>\s]*>|Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4})\r\n`)
)

// withoutRelayFields removes what the relay adds to a message: its
// Received field at the top, and the Message-ID and Date fields it adds
// when the message has none.
func withoutRelayFields(text []byte) []byte {
	return relayStampRE.ReplaceAll(withoutReceived(text), nil)
}

// withoutReceived removes the relay's Received field from the top.
func withoutReceived(text []byte) []byte {
	if !bytes.HasPrefix(text, []byte("Received:")) {
		return text
	}
	i := 0
	for {
		j := bytes.Index(text[i:], []byte("\r\n"))
		if j < 0 {
			return nil
		}
		i += j + 2
		if i >= len(text) || (text[i] != ' ' && text[i] != '\t') {
			return text[i:]
		}
	}
}

// refDataText is the message text the relay must make of what a client
// sends after 354 (RFC 5321 section 4.5.2, as Postfix reads it): a line
// starts at the start and after each CRLF; a line that is "." CRLF ends
// the text; any other line starting with a dot loses that dot; every other
// octet is text, a CR that ends no line included. go-smtp's reader (v0.25)
// also dropped a CR after a leading dot and missed the end after a stray
// CR ("a" CR CR LF "." CRLF); the relay reads as this does since fbbcd22.
// ok is false if raw holds no end.
func refDataText(raw []byte) (text []byte, rest []byte, ok bool) {
	lineStart := true
	for i := 0; i < len(raw); i++ {
		if lineStart && raw[i] == '.' {
			if bytes.HasPrefix(raw[i+1:], []byte("\r\n")) {
				return text, raw[i+3:], true
			}
			lineStart = false
			continue
		}
		text = append(text, raw[i])
		lineStart = raw[i] == '\n' && i > 0 && raw[i-1] == '\r'
	}
	return text, nil, false
}

// relayCRLF is what the relay makes of a message's line endings: CRLF
// stays, and so does a run of CRs before an LF, as one CRLF; a bare CR or
// LF becomes CRLF, and a last line without an ending gets one.
func relayCRLF(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		run := 0
		for i+run < len(b) && b[i+run] == '\r' {
			run++
		}
		switch c := b[i]; {
		case run > 0 && i+run < len(b) && b[i+run] == '\n':
			out = append(out, '\r', '\n')
			i += run
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// firstDiffAt is where a and b first differ, -1 if equal.
func firstDiffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// around quotes b near position i.
func around(b []byte, i int) string {
	lo, hi := max(0, i-40), min(len(b), i+40)
	return fmt.Sprintf("...%q...", b[lo:hi])
}

// senders runs round(s, k) over and over in n goroutines (s is the
// goroutine, k the round) until the returned stop is called, which waits
// for every round under way to end. The load of the kill tests.
func senders(n int, round func(s, k int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for s := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				round(s, k)
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}

// sendSession sends n messages over one session to addr, msg(m) giving
// each one's sender and text, and calls acked for each that was accepted;
// it stops at the first that was not. A relay that cannot be reached is
// tried again after a pause, by the caller's next round.
func sendSession(addr string, n int, msg func(m int) (from, body string), acked func(from, body string)) {
	c, _, err := dialFrom(addr, "127.0.0.1")
	if err != nil {
		time.Sleep(50 * time.Millisecond)
		return
	}
	c.cmd("EHLO client.e2e.test")
	for m := range n {
		from, body := msg(m)
		if _, err := c.send(from, []string{"bob@example.net"}, body); err != nil {
			break
		}
		acked(from, body)
	}
	c.cmd("QUIT")
	c.Close()
}
