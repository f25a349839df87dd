package command

import (
	"errors"
	"strings"
)

// Split splits a program specification, as given to --filter or
// --address-verifier, into an argument vector.
//
// The rules are E-MailRelay's, made a little more lenient:
//
//   - spaces and tabs separate words; runs of them count as one;
//   - a backslash makes the next character literal, so "c:/Program\ Files/x"
//     is one word and "\\" is a backslash; a backslash at the very end is
//     kept as it is;
//   - double quotes group: "a b" is one word, the quotes are removed, and
//     a backslash inside them still escapes the next character; quotes may
//     join other text ("a b"c is the word `a bc`); "" is an empty word; an
//     unterminated quote runs to the end of the string rather than failing;
//   - single quotes are ordinary characters, because no shell is involved
//     and they occur in real paths.
//
// A specification with no words is an error.
func Split(s string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool // a word has started, possibly empty ("")
		quoted bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 < len(s) {
				i++
				c = s[i]
			}
			word.WriteByte(c)
			inWord = true
		case c == '"':
			quoted = !quoted
			inWord = true
		case (c == ' ' || c == '\t' || c == '\n' || c == '\r') && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 || words[0] == "" {
		return nil, errors.New("command: empty program specification")
	}
	return words, nil
}
