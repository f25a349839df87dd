package smtpd

import (
	"strings"
	"testing"
	"time"
)

// TestLo27TransactionCreditExpires: the text a client sends earns its
// transaction time past the transaction timeout only while it keeps
// coming at the minimum rate. A client that sends 200 KB at once (400 s
// of credit at 500 octets a second) and then goes quiet, under the idle
// timeout, is cut about one window after the timeout, not hundreds of
// seconds later.
func TestLo27TransactionCreditExpires(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TransactionTimeout = time.Second })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	for _, c := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "DATA"} {
		if r := s.cmd(c); r[0] != '2' && r[0] != '3' {
			t.Fatalf("%s: %q", c, r)
		}
	}
	start := time.Now()
	s.send("Subject: burst\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 2000))
	s.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	r := s.reply()
	if !strings.HasSuffix(r, "transaction took too long") || time.Since(start) > 4*time.Second {
		t.Errorf("a burst, then silence, with a 1-s transaction timeout: %q after %v; want the transaction timeout's 421 4.4.2 within about 2 s", r, time.Since(start))
	}
}
