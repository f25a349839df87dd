package table

import "strings"

// GNUWordAnchors rewrites the word anchors \< and \> of GNU's POSIX
// regular expressions (glibc's regcomp, which Postfix's regexp: tables
// use, and GNU egrep, which relay-enforcer's welcomelists use) as RE2's
// \b: Go's regexp would take them for a literal < and >, and the pattern
// would never match. Inside a bracket expression a backslash is left as it
// is, as POSIX reads it.
func GNUWordAnchors(p string) string {
	if !strings.Contains(p, `\<`) && !strings.Contains(p, `\>`) {
		return p
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if strings.HasPrefix(p[i+1:], "]") || strings.HasPrefix(p[i+1:], "^]") {
				// "[]...]" and "[^]...]": that ] is a member.
				n := strings.IndexByte(p[i+1:], ']') + 1
				b.WriteString(p[i : i+1+n])
				i += n
				continue
			}
		case c == '\\' && i+1 < len(p):
			if p[i+1] == '<' || p[i+1] == '>' {
				b.WriteString(`\b`)
			} else {
				b.WriteString(p[i : i+2])
			}
			i++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
