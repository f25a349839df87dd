package headercheck

import (
	"bytes"
	"strings"
	"testing"
)

// TestGd28LongBodyLine: a body line over maxLine (1 MB) was passed
// through unchecked, so a REJECT rule was dodged by padding the line.
// Postfix checks such a line in pieces of line_length_limit (2048) bytes;
// relaykeeper checks it in pieces of maxLine, each of which holds whole
// pieces of Postfix's, so what Postfix finds is found.
func TestGd28LongBodyLine(t *testing.T) {
	if maxLine%postfixLineLengthLimit != 0 {
		t.Fatalf("maxLine %d is not a multiple of Postfix's line_length_limit %d", maxLine, postfixLineLengthLimit)
	}
	c := openChecks(t, "", "/casino-pills/ REJECT no spam\n/drop-me/ IGNORE\n")
	pad := strings.Repeat("a", maxLine)
	for _, tt := range []struct {
		name, line string
		reject     bool
	}{
		{"at the start", "casino-pills " + pad, true},
		{"in the second piece", pad + " casino-pills", true},
		{"in the fourth piece of a 3 MB line", pad + pad + pad + "casino-pills" + pad[:100], true},
		// As Postfix's pieces at 2048, ours at 1 MB: a match across a
		// piece boundary is not found (Postfix would miss it too).
		{"across a boundary", pad[:maxLine-4] + "casino-pills" + pad, false},
		{"nowhere", pad + pad + "b", false},
	} {
		in := "Subject: x\r\n\r\nfirst\r\n" + tt.line + "\r\nlast\r\n"
		var out bytes.Buffer
		res, err := c.Apply(strings.NewReader(in), &out)
		if err != nil {
			t.Fatalf("%s: Apply: %v", tt.name, err)
		}
		if got := res.Verdict == Reject; got != tt.reject {
			t.Errorf("%s: rejected %v (%+v); want %v", tt.name, got, res.Verdict, tt.reject)
		}
		if out.String() != in {
			t.Errorf("%s: the message changed (%d bytes in, %d out)", tt.name, len(in), out.Len())
		}
	}
	// IGNORE in a piece drops that piece, as Postfix drops its record.
	in := "Subject: x\r\n\r\n" + pad + "drop-me" + pad + "\r\n"
	var out bytes.Buffer
	if _, err := c.Apply(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if want := "Subject: x\r\n\r\n" + pad + pad[:len("drop-me")] + "\r\n"; out.String() != want {
		t.Errorf("IGNORE in the second piece: %d bytes out; want %d (the first and last pieces)", out.Len(), len(want))
	}
}
