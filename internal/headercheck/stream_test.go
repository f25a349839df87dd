package headercheck

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// messageSource produces a message part by part, hashing what it gives
// out, and checks at each part that the output has kept up: proof that
// Apply streams rather than buffering the body.
type messageSource struct {
	parts   []func() []byte
	cur     []byte
	read    int64
	hash    hash.Hash
	out     *countingWriter
	lagging string // first time the output fell behind
}

func (s *messageSource) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		if len(s.parts) == 0 {
			return 0, io.EOF
		}
		s.cur, s.parts = s.parts[0](), s.parts[1:]
		// Apply may hold one line (up to maxLine) and two 64 KiB buffers.
		if lag := s.read - s.out.n; lag > 4*maxLine && s.lagging == "" {
			s.lagging = fmt.Sprintf("after %d bytes read only %d written", s.read, s.out.n)
		}
	}
	n := copy(p, s.cur)
	s.hash.Write(s.cur[:n])
	s.cur = s.cur[n:]
	s.read += int64(n)
	return n, nil
}

type countingWriter struct {
	n    int64
	hash hash.Hash
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.hash.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

func repeat(s string) func() []byte { return func() []byte { return []byte(s) } }

func TestLargeMessageStreams(t *testing.T) {
	c := openChecks(t,
		"/^X-Long:/ WARN long\n/^X-Folded: start/ PREPEND X-Seen: folded\n/^Subject:/ WARN seen\n",
		"/^reject/ REJECT found it\n/^x+$/ IGNORE\n")
	out := &countingWriter{hash: sha256.New()}
	src := &messageSource{hash: sha256.New(), out: out}
	add := func(f func() []byte) { src.parts = append(src.parts, f) }

	// A header of one 2 MB line, and one folded into 2 MB of lines: too
	// long to hold, checked on their first headerSizeLimit bytes as
	// Postfix does, and streamed.
	add(repeat("X-Long: " + strings.Repeat("a", 2*maxLine) + "\r\n"))
	prepended := len(src.parts)
	add(repeat("X-Folded: start\r\n"))
	for i := 0; i < 2*maxLine/1000; i++ {
		add(repeat("\t" + strings.Repeat("b", 998) + "\r\n"))
	}
	add(repeat("Subject: big\r\n\r\n"))
	// A 3 MB body line: checked in pieces (TestGd28LongBodyLine), and
	// streamed.
	add(repeat("keep " + strings.Repeat("c", 3*maxLine) + "\r\n"))
	// A line just under the limit is checked: the rule would delete it,
	// so it is not part of the expected output.
	deleted := len(src.parts)
	add(func() []byte { return []byte(strings.Repeat("x", maxLine-10) + "\r\n") })
	// 64 MB of ordinary lines, then the line that is rejected.
	line := strings.Repeat("0123456789", 7) + "\r\n"
	block := strings.Repeat(line, 1<<16/len(line))
	for i := 0; i < 64<<20/len(block); i++ {
		add(repeat(block))
	}
	add(repeat("reject me\r\nlast line\r\n"))

	// The expected output: the input without the one deleted line.
	want := sha256.New()
	for i, part := range src.parts {
		if i == deleted {
			continue
		}
		if i == prepended {
			want.Write([]byte("X-Seen: folded\r\n"))
		}
		want.Write(part())
	}

	res, err := c.Apply(src, out)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if src.lagging != "" {
		t.Errorf("Apply did not stream: %s", src.lagging)
	}
	if got, want := fmt.Sprintf("%x", out.hash.Sum(nil)), fmt.Sprintf("%x", want.Sum(nil)); got != want {
		t.Errorf("output hash = %s; want %s (the input less the one deleted line)", got, want)
	}
	wantRes := Result{
		Verdict: Reject, Code: 550, Enhanced: "5.7.1", Text: "found it", Match: "body reject me",
		Warnings: []string{describe("header", "X-Long: "+strings.Repeat("a", 1000)) + ": long", "header Subject: big: seen"},
	}
	if diff := cmp.Diff(wantRes, res); diff != "" {
		t.Errorf("Result (-want +got):\n%s", diff)
	}
}

// After a REJECT the rest is copied, not checked, but all of it is read.
func TestRejectConsumesInput(t *testing.T) {
	c := openChecks(t, "/^Subject: x/ REJECT\n", "/^b/ IGNORE\n")
	in := crlf("Subject: x", "To: y", "", strings.Repeat("b\r\n", 100000))
	r := strings.NewReader(in)
	var out bytes.Buffer
	res, err := c.Apply(r, &out)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("Apply left %d bytes unread", r.Len())
	}
	if out.String() != in {
		t.Errorf("Apply changed the message after REJECT")
	}
	if res.Verdict != Reject {
		t.Errorf("Verdict = %v; want %v", res.Verdict, Reject)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

type failingReader struct{ data io.Reader }

func (r failingReader) Read(p []byte) (int, error) {
	if n, err := r.data.Read(p); err != io.EOF {
		return n, err
	}
	return 0, io.ErrUnexpectedEOF
}

func TestApplyErrors(t *testing.T) {
	c := openChecks(t, "/^Subject:/ WARN w\n", "/^z/ IGNORE\n")
	msg := crlf("Subject: s", "", strings.Repeat("body\r\n", 50000))
	if _, err := c.Apply(strings.NewReader(msg), failingWriter{}); err == nil || !strings.Contains(err.Error(), "writing message") {
		t.Errorf("Apply to a failing writer = %v; want a write error", err)
	}
	if _, err := c.Apply(failingReader{strings.NewReader(msg)}, io.Discard); err == nil || !strings.Contains(err.Error(), "reading message") {
		t.Errorf("Apply from a failing reader = %v; want a read error", err)
	}
}
