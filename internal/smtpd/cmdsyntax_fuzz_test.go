package smtpd

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzCmdSyntax feeds a client's MAIL, RCPT and BDAT arguments straight to
// the syntax checks the command layer runs before go-smtp sees a line
// (FuzzCommandLayer reaches them only through a socket, some ten thousand
// times a minute): a path refusal is one printable reply line with a 5xx
// code; a MAIL line with a SIZE past 32 bits comes back as one CRLF line
// without it; BDAT's size is a 32-bit count and the three readers agree.
func FuzzCmdSyntax(f *testing.F) {
	for _, s := range []string{
		"<a@example.org>", "<> SIZE=10", "<@r.example:\"s c\"@x> BODY=8BITMIME", "postmaster", "<\"a >b\"@example.com> SIZE=99999999999999999999 FOO=1",
		"<a@b> SIZE=4294967296", "<a@b> size=4294967295 SIZE=4294967296 SIZE=", "<\x00@b>", "<a@\xff>", "root", "<a@[IPv6:::1]>", "<@a>",
		"<a@b", "a@b>", " <a@b> ", "<\"\"@b>", "", "3 LAST", "4294967296", "1 last", "0", "-1", "+5", "3 LAST x", "12345678901234567890123",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, rcpt := range []bool{false, true} {
			r := pathRefusal(s, rcpt)
			if r == "" {
				continue
			}
			if len(r) < 5 || r[0] != '5' || r[3] != ' ' || strings.ContainsAny(r, "\r\n\x00") {
				t.Fatalf("pathRefusal(%q, %v) = %q: not one 5xx reply line", s, rcpt, r)
			}
			if _, err := strconv.Atoi(r[:3]); err != nil {
				t.Fatalf("pathRefusal(%q, %v) = %q: no code", s, rcpt, r)
			}
			for i := 0; i < len(r); i++ {
				if r[i] < ' ' || r[i] >= 0x7f {
					t.Fatalf("pathRefusal(%q, %v) = %q: byte %#x", s, rcpt, r, r[i])
				}
			}
		}

		// A command line ends at its LF, and one with NUL or a bare CR is
		// refused before: no argument holds them.
		line := []byte("MAIL FROM:" + s + "\r\n")
		out := dropWideSize("FROM:"+s, line)
		if string(out) != string(line) && !strings.ContainsAny(s, "\r\n\x00") {
			o := string(out)
			if !strings.HasPrefix(o, "MAIL FROM:") || !strings.HasSuffix(o, "\r\n") || strings.Count(o, "\n") != 1 || len(out) > len(line) {
				t.Fatalf("dropWideSize(%q) = %q", s, o)
			}
			for _, p := range strings.Fields(o) {
				k, v, _ := strings.Cut(p, "=")
				if n, err := strconv.ParseUint(v, 10, 64); strings.EqualFold(k, "SIZE") && (err != nil && v != "" && strings.Trim(v, "0123456789") == "" || err == nil && n > 1<<32-1) {
					t.Fatalf("dropWideSize(%q) = %q: keeps %s", s, o, p)
				}
			}
		}

		size, last, ok := bdatArgs(s)
		n, counted := bdatCount(s)
		if ok && (!counted || n != size || size < 0 || size > 1<<32-1) {
			t.Fatalf("bdatArgs(%q) = %d, %v, %v; bdatCount = %d, %v", s, size, last, ok, n, counted)
		}
		if counted && bdatOutOfRange(s) {
			t.Fatalf("bdatCount(%q) counted %d, and bdatOutOfRange says it is too large", s, n)
		}
	})
}
