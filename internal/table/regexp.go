package table

import (
	"regexp"
	"strconv"
	"strings"
)

// dialect says whose flags and defaults a pattern file follows.
type dialect int

const (
	posixRE dialect = iota // regexp_table(5): POSIX ERE, flags i m x
	pcreRE                 // pcre_table(5): flags i m s x A E U X
)

// rePattern is one /pattern/flags, compiled.
type rePattern struct {
	re     *regexp.Regexp
	negate bool
}

// reRule is one line of a regexp or pcre table: a match rule, or an "if".
type reRule struct {
	pats   []rePattern // one, or two for the old /p1/!/p2/ form
	result template
	line   int
	isIf   bool
	end    int // for an if: index of the first rule after its endif
}

type reTable struct {
	rules []reRule
}

// lookup applies the rules in order to the whole key, the first match wins.
func (t *reTable) lookup(key string) (string, bool) {
	for i := 0; i < len(t.rules); {
		r := &t.rules[i]
		if r.isIf {
			if r.pats[0].re.MatchString(key) != r.pats[0].negate {
				i++
			} else {
				i = r.end
			}
			continue
		}
		var loc []int
		ok := true
		first := r.pats[0]
		if first.negate {
			ok = !first.re.MatchString(key)
		} else if r.result.refs {
			loc = first.re.FindStringSubmatchIndex(key)
			ok = loc != nil
		} else {
			ok = first.re.MatchString(key)
		}
		if ok && len(r.pats) > 1 {
			ok = r.pats[1].re.MatchString(key) != r.pats[1].negate
		}
		if ok {
			return r.result.expand(key, loc), true
		}
		i++
	}
	return "", false
}

// parseRegexp parses a regexp_table(5) or pcre_table(5) file.
func parseRegexp(p *problems, lines []logicalLine, d dialect) *reTable {
	t := &reTable{}
	var open []int // indexes of the "if" rules not yet closed
	for _, ll := range lines {
		s := ll.text
		switch {
		case !isAlnum(s[0]):
			r, ok := parseMatchRule(p, ll.line, s, d)
			if ok {
				t.rules = append(t.rules, r)
			}
		case keyword(s, "if"):
			pat, rest, err := parsePattern(s[2:], d)
			if err != "" {
				p.errorf(ll.line, "%s", err)
				// Keep the block structure so that its endif matches.
				pat = rePattern{re: regexp.MustCompile(`\A\z`)}
			}
			if trimSpace(rest) != "" {
				p.warnf(ll.line, "ignoring extra text after if")
			}
			open = append(open, len(t.rules))
			t.rules = append(t.rules, reRule{pats: []rePattern{pat}, isIf: true})
		case keyword(s, "endif"):
			if len(open) == 0 {
				p.errorf(ll.line, "endif without matching if")
				continue
			}
			if trimSpace(s[5:]) != "" {
				p.warnf(ll.line, "ignoring extra text after endif")
			}
			t.rules[open[len(open)-1]].end = len(t.rules)
			open = open[:len(open)-1]
		default:
			p.errorf(ll.line, "unrecognized line %q: want /pattern/flags result, if /pattern/, or endif", clip(s))
		}
	}
	for range open {
		p.errorf(lastLine(lines), "missing endif: more ifs than endifs")
	}
	return t
}

func lastLine(lines []logicalLine) int {
	if len(lines) == 0 {
		return 1
	}
	return lines[len(lines)-1].line
}

// keyword reports whether s starts with the word kw (any case) followed by a
// non-alphanumeric character or the end, as Postfix's "if" and "endif" tests.
func keyword(s, kw string) bool {
	return len(s) >= len(kw) && strings.EqualFold(s[:len(kw)], kw) &&
		(len(s) == len(kw) || !isAlnum(s[len(kw)]))
}

func parseMatchRule(p *problems, line int, s string, d dialect) (reRule, bool) {
	first, rest, err := parsePattern(s, d)
	if err != "" {
		p.errorf(line, "%s", err)
		return reRule{}, false
	}
	r := reRule{pats: []rePattern{first}, line: line}
	if strings.HasPrefix(rest, "!") {
		second, rest2, err := parsePattern(rest, d)
		if err != "" {
			p.errorf(line, "%s", err)
			return reRule{}, false
		}
		r.pats = append(r.pats, second)
		rest = rest2
	}
	result := trimSpace(rest)
	if result == "" {
		// Postfix warns and uses an empty result; an empty access action
		// or transport is never what the administrator meant.
		p.errorf(line, "missing result after the pattern")
		return reRule{}, false
	}
	tpl, err := parseTemplate(result)
	if err != "" {
		p.errorf(line, "%s", err)
		return reRule{}, false
	}
	if tpl.maxRef > 0 && first.negate {
		p.errorf(line, "$%d in the result of a negated pattern: a pattern that does not match has no substrings", tpl.maxRef)
		return reRule{}, false
	}
	if n := first.re.NumSubexp(); tpl.maxRef > n {
		p.errorf(line, "$%d in the result, but the pattern has only %d parenthesized subexpressions", tpl.maxRef, n)
		return reRule{}, false
	}
	r.result = tpl
	return r, true
}

// parsePattern reads [!...]/pattern/flags from the start of s (leading
// whitespace allowed) and returns what follows the flags.
func parsePattern(s string, d dialect) (pat rePattern, rest, err string) {
	s = trimLeft(s)
	for strings.HasPrefix(s, "!") {
		pat.negate = !pat.negate
		s = trimLeft(s[1:])
	}
	if s == "" {
		return pat, "", "missing pattern"
	}
	delim := s[0]
	if isAlnum(delim) || delim >= 0x80 || delim == '\\' {
		return pat, "", "pattern delimiter " + strconv.QuoteRune(rune(delim)) + " must be an ASCII punctuation character such as /"
	}
	// Find the closing delimiter; a backslash protects the next character
	// and stays in the pattern, as in Postfix.
	i := 1
	for ; i < len(s) && s[i] != delim; i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
	}
	if i >= len(s) {
		return pat, "", "no closing pattern delimiter " + strconv.QuoteRune(rune(delim)) + " in " + strconv.Quote(clip(s))
	}
	expr := s[1:i]
	s = s[i+1:]
	j := 0
	for j < len(s) && !isSpace(s[j]) && s[j] != '!' {
		j++
	}
	flags := s[:j]
	re, err := compilePattern(expr, flags, d)
	if err != "" {
		return pat, "", err
	}
	pat.re = re
	return pat, s[j:], ""
}

func trimLeft(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

// compilePattern turns a Postfix pattern and its flags into a Go regexp
// with the same defaults: both dialects are case-insensitive unless "i"
// toggles it off. POSIX regexp tables let "." match a newline unless "m"
// (REG_NEWLINE) is set and use leftmost-longest matching; PCRE tables
// match "." against newline by default ("s" toggles) and "x" toggles
// free-spacing, which RE2 lacks and which is therefore done here.
func compilePattern(expr, flags string, d dialect) (*regexp.Regexp, string) {
	icase, multiline, dotall, extended, anchored, ungreedy := true, false, true, d == posixRE, false, false
	for i := 0; i < len(flags); i++ {
		c := flags[i]
		switch {
		case c == 'i':
			icase = !icase
		case c == 'm':
			multiline = !multiline
		case c == 'x':
			extended = !extended
		case d == pcreRE && c == 's':
			dotall = !dotall
		case d == pcreRE && c == 'A':
			anchored = !anchored
		case d == pcreRE && c == 'U':
			ungreedy = !ungreedy
		case d == pcreRE && (c == 'E' || c == 'X'):
			// E (dollar matches only at the very end) is what RE2's $ does
			// anyway; X (unknown escapes are errors) is what RE2 does anyway.
		default:
			return nil, "unknown pattern flag " + strconv.QuoteRune(rune(c))
		}
	}
	if d == posixRE {
		if !extended {
			return nil, "flag x (POSIX basic regular expression syntax) is not supported; write the pattern in extended syntax"
		}
		if msg := perlOnly(expr); msg != "" {
			return nil, "pattern " + strconv.Quote(clip(expr)) + ": " + msg + "; Postfix's regexp: tables are POSIX (use a pcre: table for Perl syntax)"
		}
		expr = GNUWordAnchors(expr)
		// REG_NEWLINE both lets ^ and $ match at newlines and stops "."
		// from matching one.
		dotall = !multiline
	} else if extended {
		expr = stripFreeSpacing(expr)
	}
	var f strings.Builder
	if icase {
		f.WriteByte('i')
	}
	if multiline {
		f.WriteByte('m')
	}
	if dotall {
		f.WriteByte('s')
	}
	if ungreedy {
		f.WriteByte('U')
	}
	// Compile the pattern alone first so that wrapping cannot turn an
	// unbalanced ")" into valid syntax.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, "pattern " + strconv.Quote(clip(expr)) + ": RE2 cannot compile it: " + err.Error()
	}
	src := expr
	if anchored {
		src = `\A(?:` + src + `)`
	}
	if f.Len() > 0 {
		src = "(?" + f.String() + ")" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, "pattern " + strconv.Quote(clip(expr)) + ": RE2 cannot compile it: " + err.Error()
	}
	if d == posixRE {
		re.Longest()
	}
	return re, ""
}

// perlOnly finds syntax that RE2, which compiles regexp: tables too,
// reads as Perl does but glibc's POSIX regcomp, which Postfix uses, reads
// otherwise, so that the same rule would match other keys: \d, \D, \x41,
// \Q...\E, \A, \z, \p, \C; a backslash and a letter inside brackets
// ("[^\s]" is "not \ or s" to glibc); "(?" (an error to glibc); "{,n}"
// (glibc's {0,n}, RE2's literal text). \w, \W, \s, \S, \b and \B
// outside brackets mean the same to both (GNU extensions).
func perlOnly(p string) string {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			if strings.IndexByte("dDxQEAzpPC", p[i]) >= 0 {
				return `\` + string(p[i]) + " is Perl syntax"
			}
		case c == '(' && i+1 < len(p) && p[i+1] == '?':
			return "(? is Perl syntax"
		case c == '{' && i+1 < len(p) && p[i+1] == ',':
			return "{,n} means {0,n} to Postfix; write {0,n}"
		case c == '[':
			end, msg := bracketEnd(p, i)
			if msg != "" {
				return msg
			}
			i = end
		}
	}
	return ""
}

// bracketEnd returns the index of the ']' that closes the bracket
// expression at p[i], as POSIX reads it: a ']' first is literal, and so is
// a backslash; [:class:], [=x=] and [.x.] are skipped whole. A backslash
// before a letter is reported, since RE2 reads it as an escape.
func bracketEnd(p string, i int) (int, string) {
	j := i + 1
	if j < len(p) && p[j] == '^' {
		j++
	}
	if j < len(p) && p[j] == ']' {
		j++
	}
	for ; j < len(p); j++ {
		switch {
		case p[j] == ']':
			return j, ""
		case p[j] == '[' && j+1 < len(p) && strings.IndexByte(":=.", p[j+1]) >= 0:
			if k := strings.Index(p[j+2:], string(p[j+1])+"]"); k >= 0 {
				j += 2 + k + 1
			}
		case p[j] == '\\' && j+1 < len(p) && (p[j+1]|0x20 >= 'a' && p[j+1]|0x20 <= 'z'):
			return j, `\` + string(p[j+1]) + " inside [...] is a backslash and a letter to Postfix"
		}
	}
	return len(p), "" // unbalanced: RE2 reports it
}

// stripFreeSpacing removes what PCRE's extended flag ignores: whitespace
// outside character classes and '#' comments, which run to the end of the
// pattern since a pattern is one line.
func stripFreeSpacing(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case inClass:
			if c == '[' && i+1 < len(p) && p[i+1] == ':' {
				if j := strings.Index(p[i:], ":]"); j > 0 {
					b.WriteString(p[i : i+j+2])
					i += j + 1
					continue
				}
			}
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' { // a leading ] is literal
				b.WriteByte(']')
				i++
			}
		case c == '#':
			return b.String()
		case isSpace(c):
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// template is a regexp table result with $n substitutions.
type template struct {
	parts  []tplPart
	refs   bool // any $n at all
	maxRef int
}

type tplPart struct {
	lit string
	ref int // >0: the text of subexpression ref
}

// parseTemplate parses a result the way Postfix's mac_parse() does for
// regexp tables: $n, ${n} and $(n) substitute, $$ is a literal $, and any
// other $name is an error.
func parseTemplate(s string) (template, string) {
	var t template
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		i++
		var name string
		if i < len(s) && (s[i] == '{' || s[i] == '(') {
			open, closing := s[i], byte('}')
			if open == '(' {
				closing = ')'
			}
			level, j := 1, i+1
			for ; j < len(s); j++ {
				if s[j] == open {
					level++
				} else if s[j] == closing {
					if level--; level == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				return t, "truncated substitution " + strconv.Quote(clip(s[i-1:])) + " in the result"
			}
			name, i = s[i+1:j], j+1
		} else {
			j := i
			for j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
				j++
			}
			name, i = s[i:j], j
		}
		switch {
		case name == "":
			return t, "lone $ in the result; write $$ for a literal $"
		case strings.Trim(name, "0123456789") != "":
			return t, "non-numeric substitution $" + strconv.Quote(name) + " in the result; write ${n} when text follows $n, and $$ for a literal $"
		}
		n, err := strconv.Atoi(name)
		if err != nil || n < 1 || n > 999 {
			return t, "substitution index $" + name + " out of range"
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, tplPart{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, tplPart{ref: n})
		t.refs = true
		t.maxRef = max(t.maxRef, n)
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tplPart{lit: lit.String()})
	}
	return t, ""
}

// expand fills in the substitutions from a match of key; loc is nil when
// the template has none.
func (t template) expand(key string, loc []int) string {
	if !t.refs {
		if len(t.parts) == 0 {
			return ""
		}
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == 0 {
			b.WriteString(p.lit)
		} else if 2*p.ref+1 < len(loc) && loc[2*p.ref] >= 0 {
			b.WriteString(key[loc[2*p.ref]:loc[2*p.ref+1]])
		}
	}
	return b.String()
}

// literal is the result text when it has no substitutions.
func (t template) literal() (string, bool) {
	if t.refs {
		return "", false
	}
	return t.expand("", nil), true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
