package headercheck

import (
	"bytes"
	"strings"
	"testing"
)

// TestGd27HeaderSizeLimit: header_checks saw a logical header whole up to
// 1 MB, and not at all beyond: a spammer put the word a rule rejects in a
// header of 2 MB and it went out unchecked, and a header of 200 KB matched
// a rule on text Postfix's cleanup(8) never lets its header_checks see
// (header_size_limit, 102400 bytes: the excess is discarded). Now every
// header is checked on its first 102400 bytes, as by Postfix; the
// message itself is not cut.
func TestGd27HeaderSizeLimit(t *testing.T) {
	c := openChecks(t, "/^Subject: spam/ REJECT no spam\n/^X-Drop:/ IGNORE\n/^X-Tail:.*tail-word/ REJECT tail\n", "")
	tests := []struct {
		name, in string
		verdict  Verdict
		dropped  string // a header IGNOREd: not in the output
	}{
		{"2 MB line, word at the start", "Subject: spam " + strings.Repeat("a", 2<<20) + "\r\n\r\nbody\r\n", Reject, ""},
		{"2 MB folded, word at the start", "Subject: spam\r\n" + strings.Repeat("\t"+strings.Repeat("b", 998)+"\r\n", 2100) + "\r\nbody\r\n", Reject, ""},
		{"200 KB, word past header_size_limit", "X-Tail: " + strings.Repeat("c", 200<<10) + " tail-word\r\n\r\nbody\r\n", Accept, ""},
		{"100 KB less, word within", "X-Tail: " + strings.Repeat("c", 90<<10) + " tail-word\r\n\r\nbody\r\n", Reject, ""},
		{"2 MB ignored", "X-Drop: " + strings.Repeat("d", 2<<20) + "\r\nX-Drop: x\r\n" + strings.Repeat("\td\r\n", 10) + "To: a@example.com\r\n\r\nbody\r\n", Accept, "X-Drop"},
		{"2 MB folded ignored", "X-Drop: x\r\n" + strings.Repeat("\t"+strings.Repeat("e", 998)+"\r\n", 2100) + "To: a@example.com\r\n\r\nbody\r\n", Accept, "X-Drop"},
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
		switch {
		case tt.dropped != "":
			if o := out.String(); strings.Contains(o, tt.dropped) || strings.Contains(o, "\td") || strings.Contains(o, "eeee") || o != "To: a@example.com\r\n\r\nbody\r\n" {
				t.Errorf("%s: output of %d bytes starts %.60q; want the header and its lines gone", tt.name, out.Len(), o)
			}
		case res.Verdict == Accept && out.String() != tt.in:
			t.Errorf("%s: output changed (%d bytes, input %d); want it whole", tt.name, out.Len(), len(tt.in))
		}
	}
}
