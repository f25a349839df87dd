package headercheck

import (
	"bytes"
	"strings"
	"testing"
)

// TestRev28LongLineEndsHeader: a body line over maxLine that ends the
// header section itself (no empty line before it, or no header at all)
// is the body's first line, and body_checks see it in pieces as they see
// any long body line (TestGd28LongBodyLine). It was passed through
// unchecked: a REJECT rule was dodged by leaving out the empty line.
func TestRev28LongLineEndsHeader(t *testing.T) {
	c := openChecks(t, "", "/casino-pills/ REJECT no spam\n")
	pad := strings.Repeat("a", maxLine)
	for _, in := range []string{
		"Subject: x\r\n" + "casino-pills " + pad + pad + "\r\nlast\r\n",
		"Subject: x\r\n" + pad + pad + " casino-pills\r\nlast\r\n",
		"casino-pills " + pad + pad + "\r\n",
		"Subject: x\n" + pad + pad + "casino-pills\n",
	} {
		var out bytes.Buffer
		res, err := c.Apply(strings.NewReader(in), &out)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if res.Verdict != Reject {
			t.Errorf("Apply(%q...) = %+v; want a REJECT", in[:20], res.Verdict)
		}
		if out.String() != in {
			t.Errorf("Apply(%q...): the message changed (%d bytes in, %d out)", in[:20], len(in), out.Len())
		}
	}
}
