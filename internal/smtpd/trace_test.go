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

// TestRev18TraceHidesSplitAuth: a client whose AUTH line reached the relay
// in two reads (a slow client, a line split across TCP segments) had the
// second piece, most of its password, traced as a line of its own under
// --verbose or debug_peers. A line is now traced once it ends.
func TestRev18TraceHidesSplitAuth(t *testing.T) {
	for _, hide := range []bool{true, false} {
		var buf bytes.Buffer
		src := &feedConn{}
		tc := &traceConn{Conn: src, log: slog.New(slog.NewTextHandler(&buf, nil)), hide: hide}
		read := func(s string) {
			if hide {
				tc.traceRead([]byte(s))
			} else {
				src.next = s
				tc.Read(make([]byte, len(s)))
			}
		}
		read("EHLO x\r\nAUTH PLAIN AGFsaW")
		read("NlAHMz")
		read("Y3JldHB3\r\nMA")
		read("IL FROM:<a@example.org>\r\n")
		read(strings.Repeat("x", 5000))
		read("AUTH PLAIN secret-long\r\nQUIT\r\n")
		log := buf.String()
		for _, secret := range []string{"NlAHMz", "Y3JldHB3", "AGFsaW", "secret-long"} {
			if strings.Contains(log, secret) {
				t.Errorf("hide=%v: a piece of an AUTH line %q traced:\n%s", hide, secret, log)
			}
		}
		for _, want := range []string{`line="AUTH PLAIN (authentication data hidden)"`, `line="MAIL FROM:<a@example.org>"`,
			`line="(line too long to trace)" bytes=5024`, `line=QUIT`} {
			if !strings.Contains(log, want) {
				t.Errorf("hide=%v: trace lacks %s:\n%s", hide, want, log)
			}
		}
	}
}

// feedConn reads what next holds.
type feedConn struct {
	net.Conn
	next string
}

func (f *feedConn) Read(p []byte) (int, error) { return copy(p, f.next), nil }

// TestRev18TraceBDATSplit: a BDAT command whose size reached the relay in
// two reads ("BDAT 1", then "00 LAST") was taken for a chunk of 1 octet,
// and the 100 octets of message text after it were traced as commands,
// under --verbose, which must leave message text out.
func TestRev18TraceBDATSplit(t *testing.T) {
	var buf bytes.Buffer
	tc := &traceConn{Conn: discardConn{}, log: slog.New(slog.NewTextHandler(&buf, nil)), hide: true}
	tc.traceRead([]byte("BDAT 1"))
	tc.traceRead([]byte("00 LAST\r\n"))
	tc.traceRead([]byte(strings.Repeat("hidden-6\r\n", 10)))
	tc.traceRead([]byte("QUIT\r\n"))
	log := buf.String()
	if strings.Contains(log, "hidden-6") {
		t.Errorf("message text traced:\n%s", log)
	}
	for _, want := range []string{`line="BDAT 100 LAST"`, `bytes=100`, `line=QUIT`} {
		if !strings.Contains(log, want) {
			t.Errorf("trace lacks %s:\n%s", want, log)
		}
	}
}

// TestRev18TraceHeldTextAfterData: a client that sends text after DATA
// without waiting for the 354 had that text's first piece held as the
// start of a command line, and traced, joined to the next command, once
// the message was over. It is dropped when the 354 goes out.
func TestRev18TraceHeldTextAfterData(t *testing.T) {
	var buf bytes.Buffer
	tc := &traceConn{Conn: discardConn{}, log: slog.New(slog.NewTextHandler(&buf, nil)), hide: true}
	tc.traceRead([]byte("DATA\r\nSubject: hidden-7"))
	tc.Write([]byte("354 go ahead\r\n"))
	tc.traceRead([]byte("\r\n\r\nbody\r\n.\r\nQUIT\r\n"))
	if log := buf.String(); strings.Contains(log, "hidden-7") || !strings.Contains(log, "line=QUIT") {
		t.Errorf("trace:\n%s\nwant no text, and QUIT", log)
	}
}
