package smtpd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// FuzzTraceSecrets: a client's session, cut into reads at the points the
// fuzzer picks, with the relay's replies written once the line they answer
// has been read, as a server does. Whatever the cuts, the trace never
// holds a login's secrets (AUTH PLAIN's initial response, AUTH LOGIN's
// answers to 334), and with hide (--verbose) never the message's text, in
// DATA or in a BDAT chunk.
func FuzzTraceSecrets(f *testing.F) {
	f.Add([]byte{3, 17, 40}, false)
	f.Add([]byte{1, 1, 1, 1, 200, 9}, true)
	f.Add([]byte{25, 2, 7, 90, 13}, true)
	const (
		s1   = "c2VjcmV0LXBsYWluLW9uZQ"
		s2   = "c2VjcmV0LXVzZXItdHdv"
		s3   = "c2VjcmV0LXBhc3MtdGhyZWU"
		text = "Subject: body-text-marker\r\n\r\n.dotted-marker line\r\nplain-marker\r\n"
		chk  = "bdat-chunk-marker"
	)
	type step struct{ client, reply string }
	session := []step{
		{"EHLO client.example\r\n", "250-relay\r\n250 AUTH PLAIN LOGIN\r\n"},
		{"AUTH PLAIN " + s1 + "\r\n", "535 5.7.8 no\r\n"},
		{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"},
		{s2 + "\r\n", "334 UGFzc3dvcmQ6\r\n"},
		{s3 + "\r\n", "235 2.7.0 ok\r\n"},
		{"MAIL FROM:<a@example.org>\r\n", "250 ok\r\n"},
		{"RCPT TO:<b@example.net>\r\n", "250 ok\r\n"},
		{"DATA\r\n", "354 go ahead\r\n"},
		{text + ".\r\n", "250 queued\r\n"},
		{"MAIL FROM:<a@example.org>\r\n", "250 ok\r\n"},
		{"RCPT TO:<b@example.net>\r\n", "250 ok\r\n"},
		{"BDAT 17 LAST\r\n" + chk, "250 queued\r\n"},
		{"QUIT\r\n", "221 bye\r\n"},
	}
	f.Fuzz(func(t *testing.T, cuts []byte, hide bool) {
		var buf bytes.Buffer
		src := &feedConn{}
		tc := &traceConn{Conn: discardConn{}, log: slog.New(slog.NewTextHandler(&buf, nil)), hide: hide}
		read := func(s string) {
			if hide {
				tc.traceRead([]byte(s))
			} else {
				src.next = s
				tc.Conn = src
				tc.Read(make([]byte, len(s)))
				tc.Conn = discardConn{}
			}
		}
		var stream string
		var ends []int
		for _, st := range session {
			stream += st.client
			ends = append(ends, len(stream))
		}
		pos, next := 0, 0
		for i := 0; pos < len(stream); i++ {
			n := len(stream) - pos
			if i < len(cuts) {
				n = min(n, 1+int(cuts[i]))
			}
			// A client waits for the reply to its last line before it
			// sends past it (no pipelining through AUTH or DATA here).
			n = min(n, ends[next]-pos)
			read(stream[pos : pos+n])
			pos += n
			for next < len(session) && ends[next] <= pos {
				tc.Write([]byte(session[next].reply))
				next++
			}
		}
		log := buf.String()
		for _, secret := range []string{s1, s2, s3, s1[:12], s2[:12], s3[:12], s1[10:], s2[8:], s3[10:]} {
			if strings.Contains(log, secret) {
				t.Fatalf("cuts %v hide=%v: a login secret (%q) traced:\n%s", cuts, hide, secret, log)
			}
		}
		if hide {
			for _, marker := range []string{"body-text", "dotted-marker", "plain-marker", "bdat-chunk", "marker"} {
				if strings.Contains(log, marker) {
					t.Fatalf("cuts %v: message text (%q) traced:\n%s", cuts, marker, log)
				}
			}
		}
	})
}
