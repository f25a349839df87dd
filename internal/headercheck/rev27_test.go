package headercheck

import (
	"bytes"
	"strings"
	"testing"
)

// TestRev27HeaderSizeLimitProbes: more shapes of long headers around
// header_size_limit (6d93ac14): the word a rule rejects within the first
// 102400 bytes is caught whatever the header's shape, the header after a
// streamed one is checked, and a passing message is never cut.
func TestRev27HeaderSizeLimitProbes(t *testing.T) {
	c := openChecks(t, "/^Subject: spam/ REJECT no spam\n/^X-Tail:.*tail-word/ REJECT tail\n/^X-Warn:/ WARN w\n", "")
	fold := func(n int, fill string) string { return strings.Repeat("\t"+strings.Repeat(fill, 998)+"\r\n", n) }
	tests := []struct {
		name, in string
		verdict  Verdict
	}{
		{"2 MB folded, word in the 50th line", "X-Tail: x\r\n" + fold(49, "b") + "\ttail-word\r\n" + fold(2100, "b") + "\r\nbody\r\n", Reject},
		{"2 MB folded, word in the 200th line", "X-Tail: x\r\n" + fold(199, "b") + "\ttail-word\r\n" + fold(2100, "b") + "\r\nbody\r\n", Accept},
		{"2 MB line, then the header rejected", "X-Long: " + strings.Repeat("a", 2<<20) + "\r\nSubject: spam\r\n\r\nbody\r\n", Reject},
		{"2 MB folded, then the header rejected", "X-Long: a\r\n" + fold(2100, "a") + "Subject: spam\r\n\r\nbody\r\n", Reject},
		{"2 MB folded warned, then the header rejected", "X-Warn: a\r\n" + fold(2100, "a") + "Subject: spam\r\n\r\nbody\r\n", Reject},
		{"2 MB line LF only, then rejected", "X-Long: " + strings.Repeat("a", 2<<20) + "\nSubject: spam\n\nbody\n", Reject},
		{"2 MB line passes whole", "X-Long: " + strings.Repeat("a", 2<<20) + "\r\nTo: a@example.com\r\n\r\nbody\r\n", Accept},
		{"2 MB folded passes whole", "X-Long: a\r\n" + fold(2100, "a") + "To: a@example.com\r\n\r\nbody\r\n", Accept},
		{"2 MB line warned passes whole", "X-Warn: " + strings.Repeat("a", 2<<20) + "\r\nTo: a@example.com\r\n\r\nbody\r\n", Accept},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		res, err := c.Apply(strings.NewReader(tt.in), &out)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Verdict != tt.verdict {
			t.Errorf("%s: verdict %v (%s); want %v", tt.name, res.Verdict, res.Match, tt.verdict)
		}
		if res.Verdict == Accept && out.String() != tt.in {
			t.Errorf("%s: output changed (%d bytes, input %d); want it whole", tt.name, out.Len(), len(tt.in))
		}
	}
}
