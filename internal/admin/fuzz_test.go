package admin

import (
	"fmt"
	"strings"
	"testing"
)

// canonical writes a parsed command back as a line.
func canonical(c command) string {
	for name, v := range verbs {
		if v != c.verb {
			continue
		}
		switch v {
		case verbSMTP:
			return map[bool]string{true: "smtp enable", false: "smtp disable"}[c.on]
		case verbDNSBL:
			if c.on {
				return "dnsbl start"
			}
			if c.seconds > 0 {
				return fmt.Sprintf("dnsbl stop %d", c.seconds)
			}
			return "dnsbl stop"
		case verbPassword:
			return "password " + c.secret
		}
		return name
	}
	return ""
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzParseCommand: the parser never panics, a parsed command written back
// parses to itself, and case does not matter to command names.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "help", "STATUS", "list", "failures", "unfail-all", "forward", "flush", "notify",
		"pid", "quit", "terminate", "smtp disable", "smtp enable", "smtp", "dnsbl start",
		"dnsbl stop", "dnsbl stop 300", "dnsbl stop 99999999999", "dnsbl stop -1",
		"password s3cret", "password  with  spaces ", "GET / HTTP/1.1", "get / http/1.1",
		"\tflush\t", "ſtatus", "smtp disable now",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c := parseCommand(line)
		if c.verb == verbEmpty && strings.Trim(line, " \t\r\n") != "" {
			t.Fatalf("parseCommand(%q) is empty", line)
		}
		if c.verb > verbUnknown && c.verb != verbHTTP && c.usage == "" {
			again := parseCommand(canonical(c))
			if again != c {
				t.Fatalf("parseCommand(%q) = %+v; written back as %q it parses to %+v", line, c, canonical(c), again)
			}
		}
		if c.verb == verbPassword && (c.secret != strings.Trim(c.secret, " \t\r\n")) {
			t.Fatalf("parseCommand(%q): password %q not trimmed", line, c.secret)
		}
		up := parseCommand(asciiUpper(line))
		if c.verb != verbHTTP && up.verb != verbHTTP && up.verb != c.verb {
			t.Fatalf("parseCommand(%q) = %v but parseCommand(%q) = %v", line, c.verb, asciiUpper(line), up.verb)
		}
	})
}
