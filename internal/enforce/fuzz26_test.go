package enforce

import (
	"strings"
	"testing"
)

// TestFuzz26WelcomelistLongBadPattern: a welcomelist line of a megabyte
// that is no pattern is refused at its line, quoted clipped (the regexp
// parser's error quoted it whole, after the line itself: two megabytes).
func TestFuzz26WelcomelistLongBadPattern(t *testing.T) {
	_, err := parseWelcomelist("wl", "192.0.2.1\n("+strings.Repeat("a", 1<<20)+"\n")
	if err == nil || len(err.Error()) > 500 || !strings.HasPrefix(err.Error(), "wl:2: bad host-name pattern \"(aaa") {
		t.Errorf("parseWelcomelist with a megabyte bad pattern: error of %d bytes: %.300v", len(err.Error()), err)
	}
	_, err = parseWelcomelist("wl", "a(b\n")
	if err == nil || err.Error() != `wl:1: bad host-name pattern "a(b": missing closing ): "(?i)a(b"` {
		t.Errorf("parseWelcomelist(a(b) = %v", err)
	}
}
