package remote_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestSmtp21SlowUpstreamBody: a server that takes the message text slowly
// but steadily gets all of it, however long the whole transfer takes; only
// a write that makes no progress for ResponseTimeout fails (Postfix's
// smtp_data_xfer_timeout is such a progress timer). Before, the whole text
// had to be written within DataTimeout (ten minutes) from its first octet:
// a large attachment to a slow smarthost failed at that mark on every
// attempt and was retried until it bounced, never delivered.
func TestSmtp21SlowUpstreamBody(t *testing.T) {
	const chunk = 128 << 10
	body := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 32<<10) // 32 MB
	got := make(chan int, 1)
	addr := newScript(t, func(s *scriptConn) {
		s.nc.SetDeadline(time.Now().Add(2 * time.Minute)) // a bound, roomy for a loaded machine
		upToTheText(s)
		if tc, ok := s.nc.(*net.TCPConn); ok {
			// What the kernel holds for the server is then a small
			// part of the transfer: the client's wait for the reply
			// to the dot stays well inside DataTimeout.
			tc.SetReadBuffer(256 << 10)
		}
		var text []byte
		b := make([]byte, chunk)
		begin := time.Now()
		for !strings.HasSuffix(string(text), "\r\n.\r\n") {
			n, err := s.nc.Read(b)
			if err != nil {
				t.Errorf("server: reading the text after %d octets: %v", len(text), err)
				got <- len(text)
				return
			}
			text = append(text, b[:n]...)
			// 4 MB/s, steady: eight seconds for the whole text, past
			// DataTimeout, about one for what the kernel buffers hold
			// after the final dot.
			time.Sleep(time.Until(begin.Add(time.Duration(len(text)) * time.Second / (4 << 20))))
		}
		got <- len(text)
		s.send("250 2.0.0 queued")
	})
	c := dial(t, addr, remote.Options{ResponseTimeout: 3 * time.Second, DataTimeout: 6 * time.Second})
	start := time.Now()
	res, err := c.Send(context.Background(), &remote.Message{From: "sender@example.org", To: []string{"a@example.net"},
		Body: strings.NewReader(body), Size: int64(len(body))})
	if err != nil {
		t.Fatalf("Send = %v after %v; want the slow but steady transfer to succeed", err, time.Since(start))
	}
	if res.Data.Code != 250 {
		t.Errorf("reply to the final dot = %q; want 250", res.Data)
	}
	if n := <-got; n < len(body) {
		t.Errorf("server got %d octets; want the whole text (%d and the dot)", n, len(body))
	}
	if d := time.Since(start); d < 6*time.Second {
		t.Logf("the transfer took only %v: the test proves nothing on this machine", d)
	}
}
