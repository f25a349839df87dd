package config

import "strings"

// ErrorLine is the line a subcommand prints for err: "relaykeeper queue: "
// and the error's text, with each context said once. Errors are wrapped at
// every level with the name of the package or the file they come from
// ("queue: spool: ..."), and a subcommand named after a package (queue,
// bans, stats) repeats it: ErrorLine leaves out a leading context already
// said, by the command or earlier in the error. Only leading contexts of
// one lower-case word are looked at, so a file name with its line
// ("rules:3: ..."), a path or a message id is kept as it is.
func ErrorLine(command string, err error) string {
	said := map[string]bool{}
	for _, w := range strings.FieldsFunc(command, func(r rune) bool { return r == ' ' || r == ':' }) {
		said[w] = true
	}
	rest := err.Error()
	var kept []string
	for {
		word, after, ok := strings.Cut(rest, ": ")
		if !ok || !isContextWord(word) {
			break
		}
		if !said[word] {
			said[word] = true
			kept = append(kept, word)
		}
		rest = after
	}
	return strings.Join(append(append([]string{command}, kept...), rest), ": ")
}

// isContextWord reports whether w is one lower-case word, as the packages'
// error prefixes are ("spool", "sender_access", "ban-log").
func isContextWord(w string) bool {
	if w == "" || w[0] < 'a' || w[0] > 'z' {
		return false
	}
	for _, c := range w {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
