package eightbit

import (
	"strings"
	"testing"
)

// TestRev19aHeadersNeedUTF8LongLine: a header line as long as the
// reader's buffer (64 KiB) came back in two pieces, the second only its
// CRLF (or LF), which was taken for the blank line that ends the header
// section: the UTF-8 header field after it went unseen, and the message
// went with it to an upstream that does not offer SMTPUTF8.
func TestRev19aHeadersNeedUTF8LongLine(t *testing.T) {
	for _, n := range []int{64<<10 - 1, 64 << 10, 128<<10 - 1, 128 << 10} {
		long := "X-Long: " + strings.Repeat("a", n-len("X-Long: "))
		msg := long + "\r\nSubject: caf\u00e9\r\n\r\nbody\r\n"
		need, err := HeadersNeedUTF8(strings.NewReader(msg))
		if err != nil || !need {
			t.Errorf("a %d-octet header line, then a UTF-8 Subject: need %v, %v; want true", n, need, err)
		}
	}
	need, err := HeadersNeedUTF8(strings.NewReader("X-Long: " + strings.Repeat("a", 64<<10) + "\r\n\r\nbody caf\u00e9\r\n"))
	if err != nil || need {
		t.Errorf("UTF-8 only in the body after a long header line: need %v, %v; want false", need, err)
	}
}
