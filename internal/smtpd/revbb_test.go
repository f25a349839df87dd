package smtpd

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRevBBSizeOver4GB: RFC 1870 allows a SIZE of up to 20 digits. go-smtp
// parses it as 32 bits, so a SIZE of 4 GiB or more that the relay's limit
// allows (no limit, or one above 4 GiB) was refused "501 5.5.4 Unable to
// parse SIZE as an integer", a syntax error for a valid command, where the
// limit it is under says 250 and the one it is over 552.
func TestRevBBSizeOver4GB(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		size  string
		want  string
	}{
		{0, "4294967295", "250 "},
		{0, "4294967296", "250 "},
		{0, "99999999999999999999", "250 "},
		{6_000_000_000, "5000000000", "250 "},
		{6_000_000_000, "7000000000", "552 5.3.4"},
		{10240000, "4294967296", "552 5.3.4"},
	} {
		ts := startServer(t, func(o *Options) { o.MaxMessageSize = tc.limit })
		s := rawDial(t, ts.addr)
		if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-") {
			t.Fatalf("EHLO: %q", r)
		}
		want := tc.want
		if n, err := strconv.ParseUint(tc.size, 10, 64); err == nil && want == "250 " && !ts.spool.Room(n) {
			want = "452 4.3.1 " // a small disk (TestS25SizeBeyondFreeSpace)
		}
		if r := s.cmd("MAIL FROM:<a@example.com> SIZE=" + tc.size); !strings.HasPrefix(r, want) {
			t.Errorf("limit %d: MAIL with SIZE=%s: %q; want %q", tc.limit, tc.size, r, want)
		}
	}
}

// TestRevBBUnknownCommand: RFC 5321 section 4.2.4 has 500 for a command
// the server does not recognize and 502 for one it recognizes and does not
// implement. The relay answered "502 5.5.2 Error: command not recognized"
// to both, where Postfix answers "500 5.5.2 Error: command not recognized"
// to an unknown command (XYZZY) and "502 5.5.1 Error: command not
// implemented" to one it knows and has turned off.
func TestRevBBUnknownCommand(t *testing.T) {
	ts := startServer(t, nil)
	s := rawDial(t, ts.addr)
	if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-") {
		t.Fatalf("EHLO: %q", r)
	}
	for line, want := range map[string]string{
		"XYZZY":          "500 5.5.2 Error: command not recognized",
		"XYZZY with arg": "500 5.5.2 Error: command not recognized",
		"EXPN list":      "502 5.5.1 Error: command not implemented",
		"HELP":           "502 5.5.1 Error: command not implemented",
		"TURN":           "502 5.5.1 Error: command not implemented",
		"ETRN example":   "502 5.5.1 Error: command not implemented",
	} {
		if r := s.cmd(line); r != want {
			t.Errorf("%s: %q; want %q", line, r, want)
		}
	}
}

// TestRevBBShutdownTracking: the sessions Shutdown wakes are forgotten when
// they end (QUIT, a client gone, a 421), so that the set does not grow
// with every connection of a long-running relay.
func TestRevBBShutdownTracking(t *testing.T) {
	ts := startServer(t, nil)
	for i := range 6 {
		s := rawDial(t, ts.addr)
		switch i % 3 {
		case 0:
			s.cmd("QUIT")
		case 1:
			s.cmd("EHLO client.test")
			s.c.Close()
		case 2:
			s.send(strings.Repeat("XYZZY\r\n", 25))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.srv.connsMu.Lock()
		n := len(ts.srv.conns)
		ts.srv.connsMu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still tracked after they all ended", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
