package table

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseError is one problem in a table, reported as FILE:LINE: message.
// Open and Reload return every ParseError of a file joined with errors.Join.
type ParseError struct {
	File string // the file name, or the spec for inline tables
	Line int    // 1-based line of the logical line's first physical line
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// problems collects the errors and warnings of one parse.
type problems struct {
	file     string
	errs     []error
	warnings []string
}

func (p *problems) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) warnf(line int, format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...)))
}

// logicalLine is one logical line of a Postfix table file and the number of
// its first physical line.
type logicalLine struct {
	line int
	text string
}

// A LogicalLine is one logical line of a table file: a line and its
// continuation lines joined, trimmed, with the number of its first line.
type LogicalLine struct {
	Line int
	Text string
}

// LogicalLines splits a table file's text into its logical lines as Open
// reads them (see logicalLines), for readers that look again at a table
// Open has accepted; it reports no problems.
func LogicalLines(data string) []LogicalLine {
	var out []LogicalLine
	for _, l := range logicalLines(&problems{}, data) {
		out = append(out, LogicalLine{Line: l.line, Text: l.text})
	}
	return out
}

// isSpace is C's isspace in the C locale, which is what Postfix uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// logicalLines splits a table file the way Postfix's readllines() does:
// lines that are empty, all whitespace, or whose first non-whitespace
// character is '#' are dropped (without ending the logical line), and a line
// that starts with whitespace continues the logical line before it. The
// physical lines are joined as they are, without the newline, so the
// continuation's leading whitespace separates the two parts. Unlike
// Postfix a trailing CR is removed from each physical line, so that files
// saved with CRLF line ends behave.
//
// A logical line that itself starts with whitespace (continuation text at
// the top of the file) is an error; Postfix warns and ignores it. So is a
// logical line that is not UTF-8 (comments may be in any encoding).
func logicalLines(p *problems, data string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	first := 0
	flush := func() {
		if first == 0 {
			return
		}
		s := cur.String()
		switch {
		case isSpace(s[0]):
			p.errorf(first, "continuation line without a preceding line (a logical line must not start with whitespace)")
		case !utf8.ValidString(s):
			// Postfix (smtputf8_enable = yes) ignores such a line in a text
			// table and fails lookups that find one in a pattern table.
			p.errorf(first, "non-UTF-8 input %q: save the table as UTF-8", clip(trimSpace(s)))
		default:
			out = append(out, logicalLine{line: first, text: trimSpace(s)})
		}
		cur.Reset()
		first = 0
	}
	n := 0
	for len(data) > 0 {
		n++
		line := data
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = ""
		}
		line = strings.TrimSuffix(line, "\r")
		t := trimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if !isSpace(line[0]) {
			flush()
		}
		if first == 0 {
			first = n
		}
		cur.WriteString(line)
	}
	flush()
	return out
}

// checkBinary rejects what is evidently an indexed database (hash:, lmdb:,
// cdb:) rather than its text source.
func checkBinary(p *problems, data []byte) bool {
	if bytes.IndexByte(data, 0) < 0 {
		return true
	}
	line := 1 + bytes.Count(data[:bytes.IndexByte(data, 0)], []byte("\n"))
	p.errorf(line, "NUL byte: this looks like an indexed database; give the text file that postmap reads instead")
	return false
}

// entry is one key's value in a hash-like table.
type entry struct {
	value string
	line  int
}

// parseText parses a postmap(1) source file (hash:, texthash: and friends)
// into a map with lower-cased keys.
func parseText(p *problems, data string) map[string]entry {
	m := make(map[string]entry)
	for _, ll := range logicalLines(p, data) {
		key, value, err := splitKeyValue(ll.text)
		if err != "" {
			p.errorf(ll.line, "%s", err)
			continue
		}
		if strings.HasSuffix(key, ":") {
			p.warnf(ll.line, "record is in \"key: value\" format; is this an alias file?")
		}
		key = strings.ToLower(key)
		if old, dup := m[key]; dup {
			p.warnf(ll.line, "duplicate entry %q ignored; the entry at line %d stays in force", key, old.line)
			continue
		}
		m[key] = entry{value: value, line: ll.line}
	}
	return m
}

// splitKeyValue splits a logical line as postmap(1) does: the key ends at
// the first whitespace outside double quotes (a backslash escapes the next
// character), and the key keeps its quotes.
func splitKeyValue(s string) (key, value, err string) {
	inQuotes := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			if i++; i >= len(s) {
				break
			}
			continue
		}
		if isSpace(c) {
			if !inQuotes {
				break
			}
		} else if c == '"' {
			inQuotes = !inQuotes
		}
	}
	if inQuotes {
		return "", "", "unbalanced '\"' in key"
	}
	if i > len(s) {
		i = len(s)
	}
	key, value = s[:i], trimSpace(s[i:])
	if key == "" || value == "" {
		return "", "", fmt.Sprintf("expected format: key whitespace value, got %q", s)
	}
	return key, value, ""
}
