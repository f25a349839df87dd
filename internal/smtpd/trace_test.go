package smtpd

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// discardConn takes every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// TestTraceHidesContent: a client traced by --verbose has its commands
// traced and its message text left out, whether it comes after a 354 (in
// pieces that split lines, with a dot inside a line) or in BDAT chunks
// with pipelined commands in the same read; a final dot split from its
// line end is found, and a dot that starts a longer line is text.
func TestTraceHidesContent(t *testing.T) {
	var buf bytes.Buffer
	tc := &traceConn{Conn: discardConn{}, log: slog.New(slog.NewTextHandler(&buf, nil)), hide: true}
	tc.traceRead([]byte("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"))
	tc.Write([]byte("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"))
	tc.traceRead([]byte("Subject: hidden-1\r\n\r\nline ."))
	tc.traceRead([]byte("\r\n.hidden-2\r\n"))
	tc.traceRead([]byte(".hidden-4\r\n."))
	tc.traceRead([]byte("\r"))
	tc.traceRead([]byte("\nMAIL FROM:<c@example.org>\r\n"))
	tc.traceRead([]byte("BDAT 9\r\nhidden-3\nBDAT 4 LAST\r\nhid"))
	tc.traceRead([]byte("eDATA\r\n"))
	tc.Write([]byte("354 go ahead\r\n"))
	tc.traceRead([]byte("."))
	tc.traceRead([]byte("hidden-5\r\n.\r\nQUIT\r\n"))
	log := buf.String()
	for _, text := range []string{"hidden-1", "hidden-2", "hidden-3", "hidden-4", "hidden-5", "line .", "eDATA"} {
		if strings.Contains(log, text) {
			t.Errorf("message text %q traced:\n%s", text, log)
		}
	}
	for _, want := range []string{`line="RCPT TO:<b@example.net>"`, `line="(message content hidden)" bytes=51`, `line=.`,
		`line="MAIL FROM:<c@example.org>"`, `line="BDAT 9"`, `bytes=9`, `line="BDAT 4 LAST"`, `bytes=4`, `line=DATA`, `bytes=11`, `line=QUIT`} {
		if !strings.Contains(log, want) {
			t.Errorf("trace lacks %s:\n%s", want, log)
		}
	}
}
