package filter

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// replayConn is a net.Conn whose peer says the fuzzer's bytes and hears
// nothing.
type replayConn struct {
	net.Conn // nil: only Read and Write are used
	r        io.Reader
}

func (c *replayConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error) { return len(p), nil }

// FuzzSpamdReply feeds arbitrary bytes as spamd's reply to CHECK: the
// exchange must end without panic, with at most 100 headers, an error
// that is one printable line, and a score that is one line.
func FuzzSpamdReply(f *testing.F) {
	for _, s := range []string{
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: True ; 15.3 / 5.0\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 1.0 / 5.0\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\nSpam: yes;\n\n",
		"SPAMD/1.5 0 EX_OK\r\nContent-length: 12\r\n\r\nSubject: x\r\n",
		"SPAMD/1.0 76 Bad header line: (Content-Length mismatch)\r\n",
		"HTTP/1.1 200 OK\r\n\r\n", "SPAMD/1.1 0 EX_OK\r\nno colon\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\n" + strings.Repeat("X: y\r\n", 101) + "\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: True \x00\x1b[31m; 9\x85 \xff/ 5\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: " + strings.Repeat("x", 9000) + "\r\n\r\n",
		"", "SPAMD/1.1 0", "SPAMD/1.1 0 EX_OK\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		c := &replayConn{r: bytes.NewReader(reply)}
		hdr, br, err := spamdExchange(c, "CHECK", strings.NewReader("Subject: x\r\n\r\n"), 14)
		if err != nil {
			if s := err.Error(); strings.ContainsAny(s, "\r\n") || len(s) > 1200 {
				t.Fatalf("error %q spans lines or is long", s)
			}
			return
		}
		if len(hdr) > 100 || br == nil {
			t.Fatalf("%d headers, reader %v", len(hdr), br)
		}
		spam, score, ok := parseSpamHeader(hdr["spam"])
		if !ok && (spam || score != "") {
			t.Fatalf("parseSpamHeader(%q) = %v, %q, false", hdr["spam"], spam, score)
		}
		if strings.ContainsAny(score, "\r\n") || len(score) > 8<<10 {
			t.Fatalf("score %q spans lines or is long", score)
		}
		// What the body reader holds is only what followed the headers.
		rest, _ := io.ReadAll(br)
		if len(rest) > len(reply) {
			t.Fatalf("body of %d bytes from a reply of %d", len(rest), len(reply))
		}
	})
}
