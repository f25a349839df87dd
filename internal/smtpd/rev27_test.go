package smtpd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/filter"
)

// slowFilter passes every message after d.
type slowFilter struct{ d time.Duration }

func (f slowFilter) Run(ctx context.Context, _, _ string) filter.Result {
	select {
	case <-time.After(f.d):
		return filter.Result{Outcome: filter.OK}
	case <-ctx.Done():
		return filter.Result{Outcome: filter.TempFail, Code: 451}
	}
}

func (slowFilter) String() string { return "slow" }

// TestRev27SteadyTextThenSlowFilterIsNotCut: a client that sent its text
// steadily, at twice the minimum rate, past the transaction timeout has
// earned time for the relay's own work after the final dot (here a
// filter that takes 2.5 s), as it had before the credit was judged per
// window. With the windows alone nothing arrives once the text has
// ended, and the relay cut the client with 421 while its filter ran,
// for the relay's slowness, not the client's.
func TestRev27SteadyTextThenSlowFilterIsNotCut(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.TransactionTimeout = time.Second
		o.IdleTimeout = 10 * time.Second
		o.Filter = slowFilter{2500 * time.Millisecond}
	})
	s := sendSteadily(t, ts.addr)
	s.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Errorf("a text sent steadily for 2.5 s (1-s transaction timeout), then a 2.5-s filter: %q; want 250", r)
	}
}

// TestRev27BdatSizeSequences: the size count of 32ae6e81 across
// transactions: RSET between chunks, a refused transaction then one of
// exactly the limit, pipelined chunks summing to the limit, and a DATA
// transaction after a BDAT one; one reply per command, in order.
func TestRev27BdatSizeSequences(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 1000 })
	chunk := func(n int) string { return strings.Repeat("a", n-2) + "\r\n" }
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	steps := []struct{ send, want string }{
		{"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"},
		{"BDAT 600\r\n" + chunk(600), "250"},
		{"RSET\r\n", "250"},
		{"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"},
		{"BDAT 600\r\n" + chunk(600), "250"},
		{"BDAT 400 LAST\r\n" + chunk(400), "250"}, // exactly the limit
		{"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"},
		{"BDAT 1001 LAST\r\n" + chunk(1001), "552"},
		{"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"},
		{"BDAT 1000 LAST\r\n" + chunk(1000), "250"},
		{"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"},
		{"DATA\r\n", "354"},
		{"Subject: x\r\n\r\nbody\r\n.\r\n", "250"},
		{"NOOP\r\n", "250"},
	}
	// Pipelined: all at once, then the replies in order.
	var all strings.Builder
	for _, st := range steps {
		all.WriteString(st.send)
	}
	s.send(all.String())
	s.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for i, st := range steps {
		if r := s.reply(); !strings.HasPrefix(r, st.want) {
			t.Fatalf("step %d (%.20q): %q; want %s", i, st.send, r, st.want)
		}
	}
}
