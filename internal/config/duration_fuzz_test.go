package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseDuration: ParseDuration never panics, a duration it returns
// has the sign the text has, its error quotes the text on one line, and
// what it returns reads back the same from Go's own spelling.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90", "90s", "5m", "1h30m", "5d", "1w", "1d12h", "1.5d", "-2d", "+3w", "0",
		"9223372036854775807", "9223372036854775808", "99999999999999999999d", "1e9d", "0.1d", ".d", "1..2d",
		"1µs", "d", "", " 7d ", "3x", "1d\n", "1ḑ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("ParseDuration(%q): error %q spans lines", s, msg)
			}
			return
		}
		if trimmed := strings.TrimSpace(s); d < 0 && !strings.HasPrefix(trimmed, "-") || d > 0 && strings.HasPrefix(trimmed, "-") {
			t.Fatalf("ParseDuration(%q) = %v: the sign changed", s, d)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, which reads back as %v, %v", s, d, back, err)
		}
		if n := strings.Trim(strings.TrimSpace(s), "0123456789"); n == "" && d%time.Second != 0 {
			t.Fatalf("ParseDuration(%q) = %v: bare seconds with a fraction", s, d)
		}
	})
}
