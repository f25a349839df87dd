package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// sinkSees is what smtp-sink dumps of a message text sent as textproto's
// DotWriter writes it: the wire's lines (ended by LF, one CR before it
// dropped), a leading dot taken off, up to the lone "." line; it dumps
// them without their CRs.
func sinkSees(text string) string {
	// The text goes out with its line endings made CRLF by crlf's rule
	// (a bare CR ends a line: bb28's 5a5a9466), then dot-stuffed.
	var norm bytes.Buffer
	cw := crlf.NewWriter(&norm)
	io.WriteString(cw, text)
	cw.Close()
	var wire bytes.Buffer
	w := textproto.NewWriter(bufio.NewWriter(&wire)).DotWriter()
	w.Write(norm.Bytes())
	w.Close()
	var lines []string
	for line := range strings.SplitSeq(strings.TrimSuffix(wire.String(), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "." {
			break
		}
		// smtp-sink drops every CR when it dumps.
		lines = append(lines, strings.ReplaceAll(strings.TrimPrefix(line, "."), "\r", ""))
	}
	return strings.Join(append(lines, ""), "\n")
}

// TestRev28DotStuffingRealPeer: message texts of every awkward shape
// (leading dots, lone dots, bare CR and LF, CR CR LF, no final line end)
// sent through Conn.Send, whose dot writer reads the body (copyText)
// in reads of every size, and pipelined behind each other (SendAhead), to
// a real smtp-sink: each arrives whole, as the peer reads it, and the
// session stays in step (a wrong stuffing would end a text early and make
// its rest commands).
func TestRev28DotStuffingRealPeer(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{})
	bodies := []string{
		".", "..", ".\r\n", "\r\n.\r\n", "\n.\n", "a\n.\nb", ".a\r\n.\r\n..\r\n", "x\r.\r\n.y",
		"a\r\r\n.\r\n", "a\rb\r", "no end", "line\r\n.", "\r", "\n", "\r\n", ".\r", "\n.", "a\r\n.\r\nb\r\n.",
		"Subject: x\r\n\r\n" + strings.Repeat(".", 9000) + "\r\n.\r\n", strings.Repeat("\n.", 5000),
		strings.Repeat("x", 70000) + "\r\n.\r\n" + strings.Repeat(".\n", 3000),
	}
	rnd := rand.New(rand.NewPCG(28, 28))
	tokens := []string{".", "..", "\r", "\n", "\r\n", "x", "Subject: y", " ", "\r\n.\r\n"}
	for len(bodies) < 400 {
		var b strings.Builder
		for range rnd.IntN(60) {
			b.WriteString(tokens[rnd.IntN(len(tokens))])
		}
		if rnd.IntN(10) == 0 {
			b.WriteString(strings.Repeat("z", rnd.IntN(100000)))
			b.WriteString(tokens[rnd.IntN(len(tokens))])
		}
		bodies = append(bodies, b.String())
	}
	readers := []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader,
		func(r io.Reader) io.Reader { return io.MultiReader(strings.NewReader(""), r) },
	}
	msg := func(i int) *remote.Message {
		text := bodies[i]
		cut := rnd.IntN(len(text) + 1)
		body := io.MultiReader(strings.NewReader(text[:cut]), readers[i%len(readers)](strings.NewReader(text[cut:])))
		return &remote.Message{From: fmt.Sprintf("m%d@example.org", i), To: []string{"r@example.net"}, Body: body, Size: int64(len(text))}
	}
	opts := remote.Options{Helo: "client.test", ConnectTimeout: 5 * time.Second, ResponseTimeout: 10 * time.Second, DataTimeout: 10 * time.Second}
	var c *remote.Conn
	m := msg(0)
	for i := range bodies {
		if c == nil {
			var err error
			if c, err = remote.Dial(context.Background(), sink.Addr(), opts); err != nil {
				t.Fatalf("Dial: %v", err)
			}
		}
		var next *remote.Message
		if i+1 < len(bodies) && (i+1)%25 != 0 {
			next = msg(i + 1)
		}
		res, err := c.SendAhead(context.Background(), m, next)
		if err != nil || !res.Accepted(0) {
			t.Fatalf("message %d (%q): %+v, %v", i, bodies[i][:min(len(bodies[i]), 40)], res, err)
		}
		if next == nil {
			c.Quit()
			c = nil
			if i+1 < len(bodies) {
				next = msg(i + 1)
			}
		}
		m = next
	}
	got := map[string]string{}
	if n := sink.WaitCount(t, len(bodies), 30*time.Second); n != len(bodies) {
		t.Fatalf("smtp-sink got %d messages; want %d", n, len(bodies))
	}
	for _, sm := range sink.Messages() {
		got[sm.From] = sm.Data
	}
	bad := 0
	for i, text := range bodies {
		want := sinkSees(text)
		if g, ok := got[fmt.Sprintf("m%d@example.org", i)]; !ok || g != want {
			if bad++; bad < 5 {
				t.Errorf("message %d %q...: smtp-sink got %q...; want %q...", i, text[:min(len(text), 40)], g[:min(len(g), 60)], want[:min(len(want), 60)])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages arrived changed", bad, len(bodies))
	}
	t.Logf("%d messages checked", len(bodies))
}

// TestRev28BodyReadErrorSendsNoDot: a message text that cannot be read to
// its end (a spool file that fails: EIO, a torn file) ends the session
// without the final dot, so that the server delivers nothing of it, also
// now that the dot writer reads the body itself (copyText), after some
// of the text has gone.
func TestRev28BodyReadErrorSendsNoDot(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{})
	for _, size := range []int{10, 100 << 10} {
		c := dial(t, sink.Addr(), remote.Options{Helo: "client.test"})
		body := io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"+strings.Repeat("y\r\n", size)), iotest.ErrReader(errors.New("input/output error")))
		res, err := c.Send(context.Background(), &remote.Message{From: "s@example.org", To: []string{"r@example.net"}, Body: body, Size: int64(3*size + 14)})
		if err == nil {
			t.Errorf("Send of a body that fails after %d lines = %+v, nil; want an error", size, res)
		}
		if !c.Broken() {
			t.Errorf("the session after a failed body is not broken; want it ended")
		}
		c.Close()
	}
	time.Sleep(500 * time.Millisecond)
	if n := sink.Count(); n != 0 {
		t.Errorf("smtp-sink delivered %d messages of bodies that failed; want none", n)
	}
}

// TestRev28TLSRecordHeldByTLSIsUnasked: over TLS, a second reply to the
// final dot in a record of its own that came in the same read from the
// socket as the first is held by the TLS layer, not in the socket nor in
// the session's read buffer. Broken looked only at those two: the session
// went on (a proxy pooled it), and the stale reply was read as MAIL's,
// every later reply as the one to the command before (a recipient's 550
// heard as the next RCPT's, a 250 to RCPT as DATA's).
func TestRev28TLSRecordHeldByTLSIsUnasked(t *testing.T) {
	conf, pool := serverTLS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		raw, err := l.Accept()
		if err != nil {
			return
		}
		cork := &harness.CorkConn{Conn: raw}
		c := tls.Server(cork, conf)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if c.Handshake() != nil {
			return
		}
		r := bufio.NewReader(c)
		c.Write([]byte("220 up.test ESMTP\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.ToUpper(strings.Fields(line + " x")[0]) {
			case "EHLO":
				c.Write([]byte("250-up.test\r\n250 PIPELINING\r\n"))
			case "DATA":
				c.Write([]byte("354 go\r\n"))
				for line != ".\r\n" {
					if line, err = r.ReadString('\n'); err != nil {
						return
					}
				}
				cork.Cork(true)
				c.Write([]byte("250 2.0.0 queued as Q1\r\n"))
				c.Write([]byte("250 2.0.0 second reply\r\n"))
				cork.Cork(false)
			case "QUIT":
				c.Write([]byte("221 bye\r\n"))
				return
			default:
				c.Write([]byte("250 2.0.0 ok\r\n"))
			}
		}
	}()
	c := dial(t, l.Addr().String(), remote.Options{Helo: "client.test", TLS: remote.TLSImplicit,
		TLSConfig: &tls.Config{RootCAs: pool}})
	res, err := c.Send(context.Background(), message("r@example.net"))
	if err != nil {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	time.Sleep(100 * time.Millisecond)
	if !c.Broken() {
		t.Errorf("a session holding a second reply to the final dot (in TLS's buffer) is not Broken; want Broken")
	}
}
