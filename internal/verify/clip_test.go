package verify

import (
	"strings"
	"testing"
)

// TestClipWithEnhancedCode: the 400-byte cap on the verifier's text
// holds when the text starts with an enhanced status code too.
func TestClipWithEnhancedCode(t *testing.T) {
	for _, text := range []string{strings.Repeat("a", 1000), "5.1.1 " + strings.Repeat("a", 1000)} {
		for _, exit := range []int{2, 3} {
			r := interpret("bob@example.net", exit, []string{text})
			if len(r.Text) > maxText {
				t.Errorf("exit %d, text %.10q...: reply text is %d bytes; want at most %d", exit, text, len(r.Text), maxText)
			}
		}
	}
}
