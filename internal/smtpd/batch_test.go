package smtpd

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// writeLog records every write to the accepted connections.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes []string
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, l: l}, nil
}

func (l *writeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, string(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestRepliesBatched: the replies a client waits for go out in one write,
// just before the server reads again: an EHLO reply, the replies to a
// pipelined MAIL, RCPT and DATA, and the reply to the final dot with
// QUIT's 221 when QUIT came with the text.
func TestRepliesBatched(t *testing.T) {
	srv := bareServer(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := &writeLog{Listener: l}
	go srv.Serve(wl)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })

	s := rawDial(t, l.Addr().String())
	if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-") || !strings.Contains(r, "|250 ") {
		t.Fatalf("EHLO: %q", r)
	}
	s.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@sink.test>\r\nDATA\r\n")
	for _, want := range []string{"250 ", "250 ", "354 "} {
		if r := s.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("pipelined group: reply %q; want %q...", r, want)
		}
	}
	s.send("Subject: batched\r\n\r\nhello\r\n.\r\nQUIT\r\n")
	for _, want := range []string{"250 2.0.0 OK: queued as ", "221 "} {
		if r := s.reply(); !strings.HasPrefix(r, want) {
			t.Fatalf("end of data and QUIT: reply %q; want %q...", r, want)
		}
	}
	got := wl.all()
	// The greeting, the EHLO reply, the group's three replies, the
	// reply to the final dot with 221.
	wantStarts := []string{"220 ", "250-", "250 ", "250 "}
	if len(got) != len(wantStarts) {
		t.Fatalf("server wrote %d times; want %d: %q", len(got), len(wantStarts), got)
	}
	for i, w := range got {
		if !strings.HasPrefix(w, wantStarts[i]) {
			t.Errorf("write %d = %q; want it to start with %q", i, w, wantStarts[i])
		}
	}
	if n := strings.Count(got[1], "\r\n"); n < 5 {
		t.Errorf("EHLO reply write has %d lines: %q", n, got[1])
	}
	if n := strings.Count(got[2], "\r\n"); n != 3 {
		t.Errorf("pipelined group's write has %d replies; want 3: %q", n, got[2])
	}
	if !strings.Contains(got[3], "\r\n221 ") {
		t.Errorf("last write %q; want the final reply and 221 together", got[3])
	}
}
