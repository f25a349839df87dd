package enforce

import (
	"strings"
	"testing"
	"time"
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

// TestFuzz26ReplyFilterManyContinuations: a reply filter line continued
// over 100,000 lines reads at once, to the same text (each continuation
// was appended to a string: time quadratic in them).
func TestFuzz26ReplyFilterManyContinuations(t *testing.T) {
	data := "# x\n/a/ b\n" + strings.Repeat("  c\n", 100000) + "/d/ e\n \tf\n"
	start := time.Now()
	got := filterLines(data)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("filterLines of 100,000 continuations took %v", d)
	}
	want := []filterLine{{line: 2, text: "/a/ b" + strings.Repeat("  c", 100000)}, {line: 100003, text: "/d/ e \tf"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("filterLines: %d lines, %.200v...; want %d", len(got), got, len(want))
	}
}
