package smtpd

import (
	"strings"
	"testing"
	"time"
)

// TestRev25TooBigTailIsCut: once a DATA text passed the size limit, Data
// returned and stopped the transaction timer, and go-smtp read the rest
// of the text to its dot with no timer at all: a client that kept sending
// (here 1,000 octets a second; one octet per idle timeout would do) held
// the session for as long as it liked, and since fb144b5f text earns more
// time, so the tail must not. The timer now stays until go-smtp ends the
// transaction, and octets after the refusal earn nothing.
func TestRev25TooBigTailIsCut(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TransactionTimeout = time.Second; o.MaxMessageSize = 1000 })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	for _, c := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "DATA"} {
		if r := s.cmd(c); r[0] != '2' && r[0] != '3' {
			t.Fatalf("%s: %q", c, r)
		}
	}
	start := time.Now()
	s.send("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 11))
	done := make(chan string, 1)
	go func() { done <- s.reply() }()
	line := strings.Repeat("y", 98) + "\r\n"
	for range 60 { // 6 s at 1,000 octets a second
		select {
		case r := <-done:
			if !strings.HasPrefix(r, "421 4.4.2 ") || time.Since(start) > 5*time.Second {
				t.Errorf("a text past the size limit, still arriving: %q after %v; want 421 4.4.2 after about 3 s", r, time.Since(start))
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		s.c.Write([]byte(line)) // the server may have closed: the reply tells

	}
	s.send(".\r\n")
	t.Errorf("a text past the size limit, sent for 6 s with a 1-s transaction timeout: %q; want 421 4.4.2 before its end", <-done)
}
