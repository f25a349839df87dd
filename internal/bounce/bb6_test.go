package bounce

import (
	"bytes"
	"strings"
	"testing"
)

// TestBB6ReturnedLongLines: a notice is the relay's own message, and RFC
// 5322 section 2.1.1 says no line of a message may pass 998 characters.
// The returned original went in as it was spooled, so a message with a
// 2,000-octet line (refused by an upstream for that very line) bounced
// with a notice holding the same line: the same upstream refused the
// notice, and the sender never heard why. Postfix's smtp client breaks
// such lines (smtp_line_length_limit = 998); the notice now does: a body
// line with CRLF, a header line with CRLF and a space, so that it stays
// the same field. For RET=HDRS too.
func TestBB6ReturnedLongLines(t *testing.T) {
	longHdr := "X-Long: " + strings.Repeat("h", 1500)
	longBody := strings.Repeat("b", 2500)
	original := "Subject: long\r\n" + longHdr + "\r\n\r\nshort\r\n" + longBody + "\r\nend\r\n"
	for _, ret := range []string{"FULL", "HDRS"} {
		env := testEnv()
		env.Ret = ret
		data := build(t, env, original, Failure, testOpts())
		for i, l := range bytes.Split(data, []byte("\r\n")) {
			if len(l) > 998 {
				t.Errorf("RET=%s: line %d of the notice is %d octets; want at most 998", ret, i+1, len(l))
			}
		}
		text := string(data)
		if !strings.Contains(text, "\r\nX-Long: "+strings.Repeat("h", 990)+"\r\n "+strings.Repeat("h", 1500-990)+"\r\n") {
			t.Errorf("RET=%s: the long header field is not folded at 998 octets into a continuation line", ret)
		}
		if ret == "FULL" && !strings.Contains(text, "\r\n"+strings.Repeat("b", 998)+"\r\n"+strings.Repeat("b", 998)+"\r\n"+strings.Repeat("b", 504)+"\r\nend\r\n") {
			t.Errorf("RET=FULL: the long body line is not broken at 998 octets")
		}
	}
}
