package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// refText is the reference reader of DATA's text, written apart from the
// scanner: it looks at whole octet sequences where the scanner goes one
// octet at a time. A line starts at the start of the text and after each
// CRLF; a line that is "." CRLF ends the text; any other line that starts
// with a dot loses that dot (RFC 5321 section 4.5.2); every other octet is
// text, a CR that ends no line included. It returns the text and the
// offset after the final dot's LF, or -1 when raw holds no end.
func refText(raw []byte) ([]byte, int) {
	var out []byte
	lineStart := true
	for i := 0; i < len(raw); i++ {
		if lineStart && raw[i] == '.' {
			if bytes.HasPrefix(raw[i+1:], []byte("\r\n")) {
				return out, i + 3
			}
			lineStart = false
			continue
		}
		out = append(out, raw[i])
		lineStart = raw[i] == '\n' && i > 0 && raw[i-1] == '\r'
	}
	return out, -1
}

// fragReader gives its bytes in pieces of random sizes, as a network does.
type fragReader struct {
	b   []byte
	rnd *rand.Rand
}

func (f *fragReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(f.b), 1+f.rnd.IntN(40))
	if f.rnd.IntN(4) == 0 {
		n = min(len(p), len(f.b)) // sometimes all there is
	}
	copy(p, f.b[:n])
	f.b = f.b[n:]
	return n, nil
}

// endOfText is where the text of raw ends by nextDataState, the scanner
// readData uses: the offset after the final dot's LF, or -1.
func endOfText(raw []byte) int {
	s := dBeginLine
	for i, b := range raw {
		if s = nextDataState(s, b); s == dEnd {
			return i + 1
		}
	}
	return -1
}

// readAllText reads raw through the command layer's Text reader, raw
// arriving in random pieces and read with buffers of random sizes; it
// returns the text, the octets of raw left unread after it, and the
// command layer's state.
func readAllText(t testing.TB, raw []byte, seed uint64) (text []byte, rest int, c *commandConn) {
	rnd := rand.New(rand.NewPCG(seed, seed>>7))
	fr := &fragReader{b: raw, rnd: rnd}
	c = &commandConn{srv: &Server{opts: Options{}}, br: bufio.NewReaderSize(fr, 16<<10),
		verb: "DATA", code: 354}
	r := c.Text()
	if r == nil {
		t.Fatal("Text() = nil after 354 to DATA")
	}
	var out []byte
	for range 1 << 20 {
		p := make([]byte, 1+rnd.IntN(100))
		if rnd.IntN(8) == 0 {
			p = make([]byte, 32<<10)
		}
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, c.br.Buffered() + len(fr.b), c
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	t.Fatal("no end of text")
	return nil, 0, nil
}

// FuzzText: the command layer's Text reader gives exactly the text that
// refText gives, however the text arrives and is read, and ends where
// refText and the command layer's scanner end it (so that the session and
// the command layer agree on where commands start again); go-smtp then
// sees only the end marker. go-smtp's own data reader was the reference
// once; it misses the end of "a" CR CR LF "." CRLF and drops the CR of
// "." CR "x".
func FuzzText(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		".\r\n",
		"..\r\n.x\r\n",
		".\r.\r\n",
		"a\r\r\n.\r\n",
		"a\r\r\r\n.\r\n",
		".\rX\r\n",
		".\r\r\n.\r\n",
		"a\n.\nb\r.\rc\r\n.\nd\n.\r\ne\r.\r\n",
		"x\r\n.\r",
		"\r\n.\r\n",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > 256<<10 {
			return
		}
		raw := append([]byte(nil), in...)
		for endOfText(raw) < 0 {
			raw = append(raw, "\r\n.\r\n"...)
		}
		want, wantEnd := refText(raw)
		if end := endOfText(raw); end != wantEnd {
			t.Fatalf("the scanner ends %q after %d octets; the reference after %d", raw, end, wantEnd)
		}
		got, rest, c := readAllText(t, raw, seed)
		if !bytes.Equal(got, want) {
			t.Fatalf("Text(%q) = %q; the reference reads %q", raw, got, want)
		}
		if len(raw)-rest != wantEnd {
			t.Fatalf("Text(%q) ends after %d octets; the reference after %d", raw, len(raw)-rest, wantEnd)
		}
		// go-smtp's next read is the end marker, then a command.
		p := make([]byte, 4096)
		n, err := c.Read(p)
		if err != nil || string(p[:n]) != ".\r\n" {
			t.Fatalf("go-smtp reads %q, %v after the text; want the end marker", p[:n], err)
		}
		if c.mode != modeCommand || c.text {
			t.Fatalf("after the end marker: mode %d, text %v", c.mode, c.text)
		}
	})
}

// TestTextDrain: when the session stops reading early, go-smtp's next read
// throws the rest of the text away and gives the end marker; a text that
// is cut off is a read error, never an end.
func TestTextDrain(t *testing.T) {
	raw := []byte("a\r\n..b\r\n" + string(bytes.Repeat([]byte("x"), 50000)) + "\r\n.\r\nNOOP\r\n")
	c := &commandConn{srv: &Server{opts: Options{}}, br: bufio.NewReaderSize(bytes.NewReader(raw), 16<<10),
		verb: "DATA", code: 354}
	r := c.Text()
	p := make([]byte, 5)
	if n, err := r.Read(p); err != nil || string(p[:n]) != "a\r\n." {
		t.Fatalf("Read = %q, %v", p[:n], err)
	}
	q := make([]byte, 4096)
	if n, err := c.Read(q); err != nil || string(q[:n]) != ".\r\n" {
		t.Fatalf("go-smtp's read after an early stop = %q, %v; want the end marker", q[:n], err)
	}
	if rest, _ := io.ReadAll(c.br); string(rest) != "NOOP\r\n" {
		t.Errorf("left for commands: %q; want NOOP", rest)
	}

	c = &commandConn{srv: &Server{opts: Options{}}, br: bufio.NewReader(bytes.NewReader([]byte("cut\r\n.")))}
	c.verb, c.code = "DATA", 354
	_, err := io.ReadAll(c.Text())
	if err == nil || errors.Is(err, io.EOF) {
		t.Errorf("a text cut off before its end reads as %v; want a read error", err)
	}
	if n, err := c.Read(q); err == nil {
		t.Errorf("go-smtp's read after the failure = %q; want an error", q[:n])
	}
}

// stampWhole is headerStamp's rule applied to a whole CRLF message at once:
// the reference for FuzzHeaderStamp.
func stampWhole(msg []byte, h *headerStamp) []byte {
	lines := bytes.SplitAfter(msg, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for k, line := range lines {
		// A blank-led first line continues no field: the body starts.
		if !headerLine(line) || k == 0 && (line[0] == ' ' || line[0] == '\t') {
			sep := ""
			if len(line) > 2 {
				sep = "\r\n"
			}
			out := bytes.Join(lines[:k], nil)
			out = append(out, h.added(sep)...)
			return append(out, bytes.Join(lines[k:], nil)...)
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		h.msgID = h.msgID || bytes.EqualFold(name, []byte("Message-ID"))
		h.date = h.date || bytes.EqualFold(name, []byte("Date"))
	}
	return append(bytes.Join(lines, nil), h.added("")...)
}

// FuzzHeaderStamp: the header stamp, fed in pieces of random sizes through
// the CRLF writer as Data feeds it, writes what its rule gives for the whole
// message.
func FuzzHeaderStamp(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		"Subject: x\r\nMessage-ID: <a@b>\r\nDate: y\r\n\r\nbody\r\n",
		"just a body line\r\n",
		"Subject: only headers",
		"Subject: x\r\n\tfolded\r\n \r\nbody",
		"",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		var out bytes.Buffer
		h := &headerStamp{w: &out, id: "ID1", domain: "relay.test", now: now}
		cw := crlf.NewWriter(h)
		rnd := rand.New(rand.NewPCG(seed, 3))
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rnd.IntN(30))
			cw.Write(rest[:n])
			rest = rest[n:]
		}
		if err := closeContent(cw, h); err != nil {
			t.Fatal(err)
		}
		text := crlf.Bytes(in)
		if len(text) > 0 && !bytes.HasSuffix(text, []byte("\r\n")) {
			text = append(text, '\r', '\n')
		}
		want := stampWhole(text, &headerStamp{id: "ID1", domain: "relay.test", now: now})
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("stamp(%q) = %q; want %q", in, out.Bytes(), want)
		}
	})
}
