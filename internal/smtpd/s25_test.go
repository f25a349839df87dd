package smtpd

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestS25SizeBeyondFreeSpace: a MAIL whose SIZE the spool's file system
// has no room for hears 452 4.3.1 at once (RFC 1870 section 6.1, as
// Postfix), not after the client has sent the whole text; with no size
// limit set, the declared size is still checked against the disk. A size
// that fits is taken.
func TestS25SizeBeyondFreeSpace(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 0 })
	var st unix.Statfs_t
	if err := unix.Statfs(ts.spool.Dir(), &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	if r := s.cmd("MAIL FROM:<a@example.com> SIZE=" + strconv.FormatUint(free, 10)); r != "452 4.3.1 Insufficient system storage" {
		t.Errorf("MAIL with SIZE of all the free space (%d): %q; want 452 4.3.1 Insufficient system storage", free, r)
	}
	if r := s.cmd("MAIL FROM:<a@example.com> SIZE=4096"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("MAIL with SIZE=4096: %q; want 250", r)
	}
}

// TestS25SlowTextIsNotCut: the transaction timeout cut a client whose text
// was still arriving (bb25: at the 10-minute default, a link slower than
// about 140 kbit/s could never send a message of the 10 MB size limit, and
// failed again at every retry). Text arriving at minDataRate or faster
// earns the transaction more time; a client that sends nothing is still
// cut at the timeout.
func TestS25SlowTextIsNotCut(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TransactionTimeout = time.Second })
	s := sendSteadily(t, ts.addr)
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("a text sent at 1,000 octets a second for 2.5 s, with a 1-s transaction timeout: %q; want 250", r)
	}
	// Silent in the middle of a transaction: cut.
	s.cmd("MAIL FROM:<a@example.com>")
	start := time.Now()
	if r := s.reply(); !strings.HasPrefix(r, "421 4.4.2 ") || time.Since(start) > 5*time.Second {
		t.Errorf("a silent transaction: %q after %v; want 421 4.4.2 after about a second", r, time.Since(start))
	}
}

// sendSteadily opens a session and sends a message's text for 2.5 s at
// 1,000 octets a second (twice the transaction timeout's minimum rate),
// up to its final dot; the caller reads the reply.
func sendSteadily(t *testing.T, addr string) *rawSession {
	t.Helper()
	s := rawDial(t, addr)
	s.cmd("EHLO client.test")
	for _, c := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>", "DATA"} {
		if r := s.cmd(c); r[0] != '2' && r[0] != '3' {
			t.Fatalf("%s: %q", c, r)
		}
	}
	s.send("Subject: slow\r\n\r\n")
	line := strings.Repeat("x", 98) + "\r\n"
	for range 25 { // 2.5 s at 1,000 octets a second, twice the minimum
		time.Sleep(100 * time.Millisecond)
		s.send(line)
	}
	s.send(".\r\n")
	return s
}
