package metrics

import (
	"regexp"
	"testing"
)

var boundedReason = regexp.MustCompile(`^([245]\.[0-9]{1,3}\.[0-9]{1,3}|[2-5][0-9][0-9]|other)$`)

// FuzzReplyReason: whatever a reply says (in proxy mode it is the
// upstream's), the reason label is a code or "other", never free text, so
// that no one can grow the number of series.
func FuzzReplyReason(f *testing.F) {
	for _, s := range []string{"554 5.7.1 <x@y>: Relay access denied", "452 4.3.1 insufficient system storage",
		"550 5.7.1234 x", "hostile <script>", "", "5", "250 2.0.0", "421-4.7.0 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		if got := replyReason(reply); !boundedReason.MatchString(got) {
			t.Fatalf("replyReason(%q) = %q; want a code or other", reply, got)
		}
	})
}
