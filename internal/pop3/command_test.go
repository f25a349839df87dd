package pop3

import (
	"bufio"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		verb    string
		args    []string
		wantErr error
	}{
		{"STAT", "STAT", nil, nil},
		{"stat", "STAT", nil, nil},
		{"STAT ", "STAT", nil, nil},
		{"LIST 1", "LIST", []string{"1"}, nil},
		{"top 1  10", "TOP", []string{"1", "10"}, nil},
		{"USER alice@example.com", "USER", []string{"alice@example.com"}, nil},
		{"PASS secret with spaces ", "PASS", []string{"secret with spaces "}, nil},
		{"PASS  lead", "PASS", []string{" lead"}, nil},
		{"PASS", "PASS", nil, nil},
		{"PASS ", "PASS", nil, nil},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "AUTH", []string{"PLAIN", "AGFsaWNlAHNlY3JldA=="}, nil},
		{"", "", nil, errEmptyCommand},
		{"   ", "", nil, errEmptyCommand},
		{" STAT", "", nil, errBadVerb},
		{"ST4T", "", nil, errBadVerb},
		{"ABCDEFGHIJKLMNOPQ", "", nil, errBadVerb},
		{"\xffSTAT", "", nil, errBadVerb},
		{"USER a\x00b", "", nil, errBadChar},
		{"PASS a\tb", "", nil, errBadChar},
		{"NOOP\r", "", nil, errBadChar},
		{"NOOP\x7f", "", nil, errBadChar},
	}
	for _, tt := range tests {
		verb, args, err := parseCommand(tt.line)
		if verb != tt.verb || !cmp.Equal(args, tt.args) || err != tt.wantErr {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.line, verb, args, err, tt.verb, tt.args, tt.wantErr)
		}
	}
}

// FuzzParseCommand checks that the parser never panics, that what it
// accepts is a keyword of letters and arguments free of spaces (but PASS's)
// and control characters, and that writing the result back parses the same.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST 1", "TOP 1 10", "PASS a b", "AUTH PLAIN =", "APOP mrose c4c9334bac560ecc979e58001b3e22fb", "  ", "X\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, args, err := parseCommand(line)
		if err != nil {
			if verb != "" || args != nil {
				t.Fatalf("parseCommand(%q) = %q, %q with error %v", line, verb, args, err)
			}
			return
		}
		if verb == "" || len(verb) > maxVerb || strings.Trim(verb, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			t.Fatalf("parseCommand(%q) keyword %q", line, verb)
		}
		for _, a := range args {
			if a == "" || strings.IndexFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
				t.Fatalf("parseCommand(%q) argument %q", line, a)
			}
			if verb != "PASS" && strings.Contains(a, " ") {
				t.Fatalf("parseCommand(%q) argument %q has a space", line, a)
			}
		}
		if verb == "PASS" && len(args) > 1 {
			t.Fatalf("parseCommand(%q) = PASS with %d arguments", line, len(args))
		}
		again := verb
		if len(args) > 0 {
			again += " " + strings.Join(args, " ")
		}
		verb2, args2, err := parseCommand(again)
		if err != nil || verb2 != verb || !cmp.Equal(args2, args) {
			t.Fatalf("parseCommand(%q) = %q, %q, %v; parsed from %q as %q, %q", again, verb2, args2, err, line, verb, args)
		}
	})
}

func TestWriteMessage(t *testing.T) {
	const msg = "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n.dot\r\nline 3\nline 4\r\n"
	tests := []struct {
		name  string
		in    string
		lines int
		want  string
	}{
		{"all", msg, -1, "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n..dot\r\nline 3\r\nline 4\r\n.\r\n"},
		{"top 0", msg, 0, "Subject: x\r\nFrom: a@b\r\n\r\n.\r\n"},
		{"top 2", msg, 2, "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n..dot\r\n.\r\n"},
		{"top beyond end", msg, 99, "Subject: x\r\nFrom: a@b\r\n\r\nline 1\r\n..dot\r\nline 3\r\nline 4\r\n.\r\n"},
		{"no final newline", "A: b\r\n\r\nend", -1, "A: b\r\n\r\nend\r\n.\r\n"},
		{"empty", "", -1, ".\r\n"},
		{"lone dot line", ".\r\n", -1, "..\r\n.\r\n"},
		{"bare LF", "A: b\n\nbody\n", -1, "A: b\r\n\r\nbody\r\n.\r\n"},
		{"long line", "X: " + strings.Repeat("y", 100000) + "\r\n\r\n.b\r\n", -1,
			"X: " + strings.Repeat("y", 100000) + "\r\n\r\n..b\r\n.\r\n"},
		{"CR at a piece boundary", strings.Repeat("z", 32<<10-1) + "\r\n", -1, strings.Repeat("z", 32<<10-1) + "\r\n.\r\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		if err := writeMessage(w, strings.NewReader(tt.in), tt.lines); err != nil {
			t.Fatalf("%s: writeMessage: %v", tt.name, err)
		}
		w.Flush()
		if got := b.String(); got != tt.want {
			t.Errorf("%s: writeMessage(%d) diff (-got +want):\n%s", tt.name, tt.lines, cmp.Diff(got, tt.want))
		}
	}
}

func TestValidUserName(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "alice@example.com": true, "a.b": true, "a b": true,
		"": false, "..": false, ".": false, "../x": false, "a/b": false, ".hidden": false,
		"a..b": false, "x\x00": false, `a\b`: false, "a\nb": false, strings.Repeat("a", 256): false,
	} {
		if got := validUserName(name); got != want {
			t.Errorf("validUserName(%q) = %v; want %v", name, got, want)
		}
	}
}
