package smtpd

import (
	"strings"
	"testing"
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
		if r := s.cmd("MAIL FROM:<a@example.com> SIZE=" + tc.size); !strings.HasPrefix(r, tc.want) {
			t.Errorf("limit %d: MAIL with SIZE=%s: %q; want %q", tc.limit, tc.size, r, tc.want)
		}
	}
}
