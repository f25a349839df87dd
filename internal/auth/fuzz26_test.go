package auth

import (
	"strings"
	"testing"
	"time"
)

// TestFuzz26SenderLoginsManyContinuations: a sender_login_maps entry
// continued over 100,000 lines (a domain's every login) is read at once;
// each continuation was appended to a string, time quadratic in the lines
// (40,000 lines took 5 s).
func TestFuzz26SenderLoginsManyContinuations(t *testing.T) {
	var b strings.Builder
	b.WriteString("@example.org u0")
	for i := 0; i < 100000; i++ {
		b.WriteString(",\n userxxxxx")
	}
	b.WriteString("\nb@example.org bob\n")
	start := time.Now()
	sl, err := parseSenderLogins("f", strings.NewReader(b.String()))
	if d := time.Since(start); err != nil || d > 3*time.Second {
		t.Fatalf("parseSenderLogins of 100,000 continuation lines: %v after %v", err, d)
	}
	if got := len(sl.owners); got != 2 {
		t.Errorf("parseSenderLogins: %d keys; want 2", got)
	}
}
