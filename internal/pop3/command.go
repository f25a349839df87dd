package pop3

import (
	"errors"
	"strings"
)

// Errors from parseCommand.
var (
	errEmptyCommand = errors.New("pop3: empty command")
	errBadVerb      = errors.New("pop3: command keyword is not 1 to 16 letters")
	errBadChar      = errors.New("pop3: control character in command")
)

// maxVerb bounds a command keyword. RFC 1939's are three or four letters
// and RFC 2449 keeps that; 16 leaves room for extensions while refusing
// garbage early.
const maxVerb = 16

// parseCommand splits one command line, without its CRLF, into the keyword
// (upper-cased: RFC 1939 section 3 says keywords are case-insensitive) and
// its arguments.
//
// Arguments are separated by spaces; runs of spaces and trailing spaces are
// tolerated, as clients send them. PASS is the exception: its one argument
// is everything after "PASS ", spaces included, as RFC 1939 section 7
// allows, so that passwords with spaces work. Control characters (NUL, CR,
// LF, TAB, DEL...) anywhere in the line are refused: no argument ever
// carries one into a log line, a file name or a secrets lookup.
func parseCommand(line string) (verb string, args []string, err error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' || c == 0x7f {
			return "", nil, errBadChar
		}
	}
	verb, rest, _ := strings.Cut(line, " ")
	if verb == "" {
		if strings.TrimLeft(line, " ") == "" {
			return "", nil, errEmptyCommand
		}
		return "", nil, errBadVerb
	}
	if len(verb) > maxVerb {
		return "", nil, errBadVerb
	}
	for i := 0; i < len(verb); i++ {
		if c := verb[i] | 0x20; c < 'a' || c > 'z' {
			return "", nil, errBadVerb
		}
	}
	verb = strings.ToUpper(verb)
	if verb == "PASS" {
		if rest == "" {
			return verb, nil, nil
		}
		return verb, []string{rest}, nil
	}
	args = strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' })
	if len(args) == 0 {
		args = nil
	}
	return verb, args, nil
}
