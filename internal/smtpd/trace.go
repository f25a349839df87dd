package smtpd

import (
	"bytes"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// traceConn logs every line a debug peer sends and receives. After STARTTLS
// it sees ciphertext, and says so once. Passwords are not logged, as the
// relay's own logins upstream are not (remote.Options.Trace): an AUTH
// command is shown without its initial response, and the lines that
// answer its 334 challenges are shown hidden. With hide (a client traced
// by --verbose rather than listed in debug_peers), message content is not
// logged either, as E-MailRelay's --verbose and Postfix's debug peers do
// not: one line says how many octets a message's text or BDAT chunk had.
type traceConn struct {
	net.Conn
	log  *slog.Logger
	sasl atomic.Bool // an AUTH exchange is under way: lines read are secrets
	hide bool

	mu      sync.Mutex // what the client sends is content: Write sets data
	data    bool       // 354 sent: lines read are text until the final dot
	midLine bool       // the text read so far ends inside a line
	chunk   int64      // octets of a BDAT chunk still to read
	hidden  int64      // octets of content not logged so far
	pending []byte     // a text line so far "." or ".\r": perhaps the final dot

	// held is the start of a command line the client has not ended
	// yet, traced when it ends: a line is judged whole, so that the end
	// of an AUTH line read apart from its start is hidden too. Guarded
	// by mu, as data is. long counts the octets of a line that outgrew maxHeld.
	held []byte
	long int
}

// maxHeld bounds a command line held back until its end.
const maxHeld = 4096

// authHidden is what the trace shows for authentication data.
const authHidden = "(authentication data hidden)"

func (t *traceConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if t.hide {
		t.traceRead(p[:n])
	} else {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, piece := range bytes.SplitAfter(p[:n], []byte("\n")) {
			if line, whole := t.wholeLine(string(piece)); whole {
				t.trace("<", []byte(line))
			}
		}
	}
	return n, err
}

func (t *traceConn) Write(p []byte) (int, error) {
	// A 354 may follow pipelined replies in one write.
	if t.hide && (bytes.HasPrefix(p, []byte("354")) || bytes.Contains(p, []byte("\n354"))) {
		t.mu.Lock()
		t.data, t.midLine = true, false
		// What the client sent after DATA without waiting for the 354,
		// held as the start of a command line, was text.
		t.held, t.long = t.held[:0], 0
		t.mu.Unlock()
	}
	t.trace(">", p)
	return t.Conn.Write(p)
}

// traceRead traces what the client sent with the content left out: the
// text after a 354 up to its final dot, and each BDAT chunk.
func (t *traceConn) traceRead(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) > 0 {
		p, t.pending = append(t.pending, p...), nil
	}
	for len(p) > 0 {
		if t.chunk > 0 {
			k := min(t.chunk, int64(len(p)))
			t.chunk, t.hidden, p = t.chunk-k, t.hidden+k, p[k:]
			if t.chunk == 0 {
				t.contentDone()
			}
			continue
		}
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
		}
		p = p[len(line):]
		if !t.data {
			whole, ended := t.wholeLine(string(line))
			if !ended {
				continue
			}
			t.trace("<", []byte(whole))
			if f := strings.Fields(whole); len(f) >= 2 && strings.EqualFold(f[0], "BDAT") {
				t.chunk, _ = strconv.ParseInt(f[1], 10, 64)
			}
			continue
		}
		if !t.midLine && (string(line) == "." || string(line) == ".\r") {
			t.pending = append(t.pending, line...) // the rest comes in the next read
			continue
		}
		if !t.midLine && strings.TrimRight(string(line), "\r\n") == "." {
			t.data = false
			t.contentDone()
			t.trace("<", line)
			continue
		}
		t.hidden += int64(len(line))
		t.midLine = line[len(line)-1] != '\n'
	}
}

// contentDone logs the size of the content just read.
func (t *traceConn) contentDone() {
	t.log.Info("smtp", "dir", "<", "line", "(message content hidden)", "bytes", t.hidden)
	t.hidden = 0
}

func (t *traceConn) trace(dir string, p []byte) {
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !utf8.ValidString(line) || strings.ContainsRune(line, 0x16) {
			t.log.Info("smtp", "dir", dir, "bytes", len(line), "data", "(binary: TLS)")
			continue
		}
		shown := strings.TrimRight(line, "\r\n")
		switch {
		case dir == ">":
			// Until the exchange's final reply, what the client
			// sends is a SASL response.
			t.sasl.Store(strings.HasPrefix(shown, "334"))
		case t.sasl.Load():
			shown = authHidden
		case len(shown) > 5 && strings.EqualFold(shown[:5], "AUTH "):
			f := strings.Fields(shown)
			if len(f) > 2 {
				shown = f[0] + " " + f[1] + " " + authHidden
			}
			// Without an initial response, a response follows
			// (even from a client that does not wait for the 334).
			t.sasl.Store(len(f) == 2)
		}
		t.log.Info("smtp", "dir", dir, "line", shown)
	}
}

// wholeLine holds back a piece of the client's line that does not end it,
// and returns the line with what was held once it ends. TLS's binary
// records are not held. A line longer than maxHeld is not traced: one
// entry says how long it was, once it ends.
func (t *traceConn) wholeLine(piece string) (string, bool) {
	if piece == "" {
		return "", false
	}
	ended := strings.HasSuffix(piece, "\n")
	if t.long > 0 || len(t.held)+len(piece) > maxHeld {
		t.long += len(t.held) + len(piece)
		t.held = t.held[:0]
		if ended {
			t.log.Info("smtp", "dir", "<", "line", "(line too long to trace)", "bytes", t.long)
			t.long = 0
		}
		return "", false
	}
	line := string(t.held) + piece
	if !ended && utf8.ValidString(line) && !strings.ContainsRune(line, 0x16) {
		t.held = append(t.held, piece...)
		return "", false
	}
	t.held = t.held[:0]
	return line, true
}
