package smtpd

import (
	"errors"
	"strconv"
	"strings"
)

// twoAts reports a path whose local part holds an unquoted "@"
// (a@b@c.example), which RFC 5321's grammar does not allow. go-smtp hands
// the session the address without its quotes, so "a@b"@c.example and
// a@b@c.example look the same there; without this, the second went on
// as the first, a guess at which domain was meant. A source route
// (@relay:a@b.example) is not counted.
func twoAts(rest string) bool {
	path, _, ok := splitPath(rest)
	if !ok {
		return false
	}
	path = strings.TrimSuffix(strings.TrimPrefix(path, "<"), ">")
	if strings.HasPrefix(path, "@") {
		_, path, _ = strings.Cut(path, ":")
	}
	if strings.HasPrefix(path, `"`) {
		// What follows a quoted local part ("a"@b@c.example) counts.
		for i := 1; i < len(path); i++ {
			if path[i] == '\\' {
				i++
			} else if path[i] == '"' {
				path = path[i+1:]
				break
			}
		}
	}
	return strings.Count(path, "@") > 1
}

// dropWideSize takes out of a MAIL line a SIZE of 4 GiB or more (a valid
// RFC 1870 size-value has up to 20 digits) that the size limit allows
// (checkParams refused any other): go-smtp parses SIZE as 32 bits and
// would refuse the command as a syntax error (501). The size goes
// undeclared, as from a client that declares none.
func dropWideSize(arg string, line []byte) []byte {
	path, params, ok := splitPath(strings.TrimSpace(arg)[len("FROM:"):])
	if !ok {
		return line
	}
	var kept []string
	for _, p := range strings.Fields(params) {
		key, value, _ := strings.Cut(p, "=")
		if strings.EqualFold(key, "SIZE") && value != "" && len(value) <= 20 && strings.Trim(value, "0123456789") == "" {
			if _, err := strconv.ParseUint(value, 10, 32); err != nil {
				continue
			}
		}
		kept = append(kept, p)
	}
	if len(kept) == len(strings.Fields(params)) {
		return line
	}
	return []byte(strings.Join(append([]string{"MAIL FROM:" + path}, kept...), " ") + "\r\n")
}

// splitPath splits what follows "FROM:" or "TO:" into the path and the
// parameters, by RFC 5321's grammar: a path in angle brackets may hold a
// quoted local part with spaces and '>' in it.
func splitPath(s string) (path, params string, ok bool) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "<") {
		// Postfix accepts an address without brackets.
		path, params, _ = strings.Cut(s, " ")
		return path, params, true
	}
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == '>':
			return s[:i+1], s[i+1:], true
		}
	}
	return "", "", false
}

// lineLimit is the longest command line, CRLF included, for a verb.
func lineLimit(verb string) int {
	switch verb {
	case "AUTH":
		return maxAuthLine
	case "MAIL", "RCPT":
		return maxMailLine
	}
	return maxCommandLine
}

// bdatArgs reads "size [LAST]" as go-smtp does.
func bdatArgs(arg string) (size int64, last, ok bool) {
	f := strings.Fields(arg)
	if len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		return 0, false, false
	}
	n, ok := bdatCount(arg)
	if !ok {
		return 0, false, false
	}
	return n, len(f) == 2, true
}

// bdatCount returns the chunk size of a BDAT whose first argument is a
// size, whatever follows it.
func bdatCount(arg string) (size int64, ok bool) {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	return int64(n), err == nil
}

// unreadChunk is the reply r to a command line refused before its
// arguments are read; for a BDAT, whose chunk follows and cannot be
// counted from a line refused unread, a 421 that ends the session
// instead, so that the chunk is never read as commands.
func (c *commandConn) unreadChunk(verb, r string) string {
	if !strings.HasPrefix(verb, "BDAT") {
		return r
	}
	return "421 4.5.2 " + c.srv.opts.Domain + " Error: unreadable BDAT command; closing connection"
}

// bdatOutOfRange reports a BDAT whose size is a number too large to count
// (past 32 bits), as opposed to one that is no number.
func bdatOutOfRange(arg string) bool {
	f := strings.Fields(arg)
	if len(f) == 0 || strings.Trim(f[0], "0123456789") != "" {
		return false
	}
	_, err := strconv.ParseUint(f[0], 10, 32)
	return errors.Is(err, strconv.ErrRange)
}

// maillogVerb keeps a refused line's verb short and printable in the log.
func maillogVerb(v string) string {
	if len(v) > 16 {
		v = v[:16]
	}
	return strings.Map(func(r rune) rune {
		if r < 'A' || r > 'Z' {
			return '?'
		}
		return r
	}, v)
}
