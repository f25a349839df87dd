package eightbit

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzHeadersNeedUTF8 holds HeadersNeedUTF8 to the plain reading: the
// header section is everything before the first empty line (CRLF or LF),
// and it needs SMTPUTF8 when any of its bytes is 8-bit.
func FuzzHeadersNeedUTF8(f *testing.F) {
	for _, s := range []string{"Subject: a\r\n\r\nbody é\r\n", "Subject: é\r\n\r\n", "Subject: a\n\nx", "", "\r\n", "X: " + strings.Repeat("a", 70000) + "é\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := HeadersNeedUTF8(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		want := false
		for _, line := range strings.SplitAfter(string(msg), "\n") {
			if strings.TrimRight(line, "\r\n") == "" {
				break
			}
			for i := 0; i < len(line); i++ {
				if line[i] >= 0x80 {
					want = true
				}
			}
			if want {
				break
			}
		}
		if got != want {
			t.Errorf("HeadersNeedUTF8(%q) = %v; want %v", msg, got, want)
		}
	})
}
