package smtpd

import (
	"strconv"
	"strings"
	"testing"

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
