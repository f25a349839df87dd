package verify

import (
	"strconv"
	"strings"
	"testing"
)

// formatNetReply is the inverse of parseNetReply.
func formatNetReply(exit int, lines []string) string {
	switch exit {
	case 0:
		return "0|" + lines[1] + "|" + lines[0]
	case 1:
		return "1|" + lines[1]
	}
	return strconv.Itoa(exit) + "|" + lines[0] + "|" + lines[1]
}

func FuzzParseNetReply(f *testing.F) {
	for _, s := range []string{"0|mailbox|Full Name", "1|a@b", "2|error text", "3|t|r", "100", "2|a|b|c", "", "x|y", "0|\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		exit, lines, err := parseNetReply(in)
		if err != nil {
			return
		}
		if exit < 0 || exit > 999 || len(lines) != 2 {
			t.Fatalf("parseNetReply(%q) = %d, %q", in, exit, lines)
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") || l != strings.TrimSpace(l) {
				t.Fatalf("parseNetReply(%q) line %q not a trimmed single line", in, l)
			}
		}
		again := formatNetReply(exit, lines)
		exit2, lines2, err := parseNetReply(again)
		if err != nil || exit2 != exit || lines2[0] != lines[0] || lines2[1] != lines[1] {
			t.Fatalf("round trip %q -> %q: %d %q %v; want %d %q", in, again, exit2, lines2, err, exit, lines)
		}
		// Whatever the reply, interpret gives a known Kind and a reply code
		// for refusals.
		r := interpret("a@b", exit, lines)
		switch r.Kind {
		case Local, Remote, Drop:
		case Reject, TempFail:
			if r.Code != 550 && r.Code != 450 || r.Text == "" || strings.ContainsAny(r.Text, "\r\n") {
				t.Fatalf("interpret(%d, %q) = %+v", exit, lines, r)
			}
		default:
			t.Fatalf("interpret(%d, %q) = unknown kind %v", exit, lines, r.Kind)
		}
	})
}
