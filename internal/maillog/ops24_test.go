package maillog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzOps24FromJSONLine: what JSONLines wraps, FromJSONLine gives back
// whole, and it never panics on any line.
func FuzzOps24FromJSONLine(f *testing.F) {
	f.Add("2026-11-22T02:26:26.385Z accept id=6B0252D2F906FE64 from=<a@example.com>")
	f.Add(`{"msg":"mail log","line":"x"}`)
	f.Add("{\"msg\":\"mail log\",\"line\":\"\\u2028\"}")
	f.Fuzz(func(t *testing.T, s string) {
		FromJSONLine(s)
		if strings.ContainsAny(s, "\r\n") || strings.TrimSpace(s) == "" || !utf8.ValidString(s) {
			return // the mail log's writer escapes what is not UTF-8
		}
		if !strings.ContainsRune(s, ' ') {
			return
		}
		var b strings.Builder
		if _, err := JSONLines(&b).Write([]byte(s + "\n")); err != nil {
			t.Fatal(err)
		}
		got, ok := FromJSONLine(strings.TrimSuffix(b.String(), "\n"))
		if !ok || got != s {
			t.Errorf("FromJSONLine(JSONLines(%q)) = %q, %v", s, got, ok)
		}
	})
}
