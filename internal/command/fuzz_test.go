package command

import (
	"strings"
	"testing"
)

// quote writes words so that Split returns them: every character that
// Split treats specially is escaped.
func quote(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w == "" {
			b.WriteString(`""`)
		}
		for _, c := range []byte(w) {
			if strings.IndexByte(" \t\r\n\"\\", c) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{`/usr/bin/spamassassin --exit-code`, `c:/Program\ Files/x.bat`, `"a b" c""d \`, `"unterminated`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		if len(words) == 0 || words[0] == "" {
			t.Fatalf("Split(%q) = %q with no error", s, words)
		}
		again, err := Split(quote(words))
		if err != nil || strings.Join(again, "\x00") != strings.Join(words, "\x00") || len(again) != len(words) {
			t.Fatalf("Split(quote(%q)) = %q, %v; want the same words", words, again, err)
		}
	})
}
