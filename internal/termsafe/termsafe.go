// Package termsafe escapes text bound for an administrator's terminal.
// Addresses (SMTPUTF8 lets a client put Unicode's C1 controls in them,
// U+009B being a terminal's CSI), HELO names, upstream replies and headers
// are strangers' text, and the queue and ban listings print them.
package termsafe

import (
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Field is s for one field of a line: every character that is not
// printable, the line feed and the tab too, escaped as Writer escapes.
func Field(s string) string {
	return string(escape(nil, []byte(s), false))
}

// Writer writes text with every character that is not printable, but for
// the line feed and the tab, escaped as Go escapes it (\x1b, \u009b), and
// bytes that are not UTF-8 as \xNN.
type Writer struct{ W io.Writer }

func (p Writer) Write(b []byte) (int, error) {
	if _, err := p.W.Write(escape(nil, b, true)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// escape appends b to out, escaped; lines keeps line feeds and tabs.
func escape(out, b []byte, lines bool) []byte {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, b[i])
		case lines && (r == '\n' || r == '\t') || r == ' ' || strconv.IsPrint(r):
			out = append(out, b[i:i+size]...)
		default:
			q := strconv.QuoteRuneToASCII(r)
			out = append(out, q[1:len(q)-1]...)
		}
		i += size
	}
	return out
}
