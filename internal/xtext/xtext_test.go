package xtext

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"alice", "alice", ""},
		{"p+3Dss+2Bword", "p=ss+word", ""},
		{"a+20b", "a b", ""},
		{"+C3+A9", "\xc3\xa9", ""},
		{"", "", ""},
		{"a+2", "", "'+' must be followed by two upper-case hex digits"},
		{"a+", "", "'+' must be followed by two upper-case hex digits"},
		{"a+3d", "", "'+' must be followed by two upper-case hex digits"},
		{"a+G0", "", "'+' must be followed by two upper-case hex digits"},
		{"a=b", "", "'=' must be written +3D"},
		{"a\x7fb", "", "only printable ASCII is allowed; write other bytes as +XX"},
		{"é", "", "only printable ASCII is allowed; write other bytes as +XX"},
	}
	for _, tt := range tests {
		got, err := Decode(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Decode(%q) error = %v; want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Decode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if back, _ := Decode(Encode(got)); back != got {
			t.Errorf("Decode(Encode(%q)) = %q", got, back)
		}
	}
	if got, want := Encode("a b=c+d\xff"), "a+20b+3Dc+2Bd+FF"; got != want {
		t.Errorf("EncodeXtext = %q; want %q", got, want)
	}
}

// TestMD5State checks the masked key against crypto/hmac, and the two
// encodings of md5 lines against each other.

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"alice", "p+3Dss+2Bword", "a+2", "+C3+A9", "a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if back, err := Decode(Encode(s)); err != nil || back != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
		}
		d, err := Decode(s)
		if err != nil {
			return
		}
		// Valid xtext without "+" is its own encoding.
		if e := Encode(d); e != s && !strings.Contains(s, "+") {
			t.Fatalf("Encode(Decode(%q)) = %q", s, e)
		}
	})
}

func TestRevDSN4EncodeUTF8Addr(t *testing.T) {
	for in, want := range map[string]string{
		"mañana@example.net": `ma\x{F1}ana@example.net`,
		"a+b=c\\d e@x":       `a\x{2B}b\x{3D}c\x{5C}d\x{20}e@x`,
		"日本@example.jp":      `\x{65E5}\x{672C}@example.jp`,
		"plain@example.org":  "plain@example.org",
	} {
		if got := EncodeUTF8Addr(in); got != want {
			t.Errorf("EncodeUTF8Addr(%q) = %q; want %q", in, got, want)
		}
	}
}
