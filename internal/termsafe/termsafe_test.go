package termsafe

import (
	"bytes"
	"testing"
	"unicode"
	"unicode/utf8"
)

// unsafe reports the first rune of out a terminal could take as a command,
// or for a field as a line of its own: a control character (C0, DEL, C1),
// a format character (bidirectional overrides), a line or paragraph
// separator, or a byte that is not UTF-8.
func unsafe(out []byte, lines bool) (rune, bool) {
	for len(out) > 0 {
		r, size := utf8.DecodeRune(out)
		if r == utf8.RuneError && size == 1 {
			return rune(out[0]), true
		}
		if lines && (r == '\n' || r == '\t') {
			out = out[size:]
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return r, true
		}
		out = out[size:]
	}
	return 0, false
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct{ in, field, lines string }{
		{"plain text é", "plain text é", "plain text é"},
		{"\x1b[2J", `\x1b[2J`, `\x1b[2J`},
		{"a\nb\tc\r", `a\nb\tc\r`, "a\nb\tc\\r"},
		{"\u009b31m", `\u009b31m`, `\u009b31m`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`, `evil\u202etxt.exe`},
		{"\xff\xfe", `\xff\xfe`, `\xff\xfe`},
		{"x\u2028y", `x\u2028y`, `x\u2028y`},
	} {
		if got := Field(tc.in); got != tc.field {
			t.Errorf("Field(%q) = %q, want %q", tc.in, got, tc.field)
		}
		var b bytes.Buffer
		if _, err := (Writer{&b}).Write([]byte(tc.in)); err != nil || b.String() != tc.lines {
			t.Errorf("Writer(%q) = %q, %v; want %q", tc.in, b.String(), err, tc.lines)
		}
	}
}

// FuzzEscape: nothing an upstream or a client wrote reaches the terminal
// as a control, format or separator character, and Write reports the
// whole input written (a short count would make fmt.Fprintf fail).
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"\x1b]0;title\x07", "\u009b", "ok\n", "\u202e", "\xc2", "\xe2\x80\xa8"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, bad := unsafe([]byte(Field(string(in))), false); bad {
			t.Fatalf("Field(%q) lets %U through", in, r)
		}
		var b bytes.Buffer
		n, err := (Writer{&b}).Write(in)
		if err != nil || n != len(in) {
			t.Fatalf("Write(%q) = %d, %v", in, n, err)
		}
		if r, bad := unsafe(b.Bytes(), true); bad {
			t.Fatalf("Writer(%q) lets %U through", in, r)
		}
	})
}
