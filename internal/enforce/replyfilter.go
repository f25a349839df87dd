package enforce

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ReplyFilter rewrites an upstream's reply before the client that
// submitted the message hears it (or before it goes into a bounce), as
// Postfix's smtp_reply_filter does, in the same file format, so that a
// filter written for Postfix, such as relay-enforcer's
// smtp_dsn_rw_filter.pcre, works unchanged:
//
//	# comment (blank lines and lines starting with '#' are skipped)
//	/^550 5\.7\.26( DMARC.+gsmtp)/   250 2.0.0${1}-fmod_dmarc
//	!/pattern/      result           # the rule matches when the pattern does not
//	if /^4/                          # the rules up to endif apply only when ...
//	/4\.7\.28/      554 5.7.28 rate
//	endif
//
// A line that starts with whitespace continues the one before. Patterns
// are delimited by '/' or another punctuation character, compiled as Go
// regular expressions (RE2: PCRE as written, less back-references and
// look-around), and are case-insensitive as in Postfix; flags after the
// pattern toggle that (i), "^ $ at line ends" (m) and ". matches newline"
// (s). In the result, $1, ${1} or $(1) is the text of a group, $$ a '$'.
// The first rule that matches wins; a result must be a reply, starting with
// a 2xx, 4xx or 5xx code, and one that does not (a $1 that held no code) is
// skipped as if the rule had not matched.
//
// Postfix applies the filter to each line of a reply as it arrives, and
// takes the reply's code from the last line. Rewrite applies it first to
// the whole reply on one line as the rules see it (Normalize: the first
// line's "550-5.7.1" kept, the later lines' prefixes removed), so that a
// pattern can see a phrase wherever Gmail broke its lines; only if no rule
// matches that does it apply the filter to each line, Postfix's way, which
// is what a Postfix filter anchored on the last line ("^550 5\.7\.26 ...")
// expects. Either way the result is made one coherent reply: every line
// gets the code and enhanced code of the rewritten reply (the first line's
// after a whole-reply match, the last line's after a line match, as Postfix
// takes it).
//
// A ReplyFilter is immutable and safe for concurrent use; one read from a
// file (LoadReplyFilter) follows the file as it changes. The zero value
// has no rules and rewrites nothing.
type ReplyFilter struct {
	rules []filterRule
	file  *watched[*ReplyFilter] // LoadReplyFilter's: the version in force
}

type filterRule struct {
	re     *regexp.Regexp
	negate bool
	result []tplPart
	isIf   bool
	end    int // for an if: the index of the first rule after its endif
}

// tplPart is a literal or, when ref > 0, the text of group ref.
type tplPart struct {
	lit string
	ref int
}

// LoadReplyFilter reads a reply filter file. Every problem is reported as
// FILE:LINE: message, joined with errors.Join. The file may be named as
// Postfix's smtp_reply_filter names it, with its table type:
// pcre:/etc/postfix/smtp_dsn_rw_filter.pcre or regexp:FILE.
func LoadReplyFilter(path string) (*ReplyFilter, error) {
	for _, typ := range []string{"pcre:", "regexp:"} {
		path = strings.TrimPrefix(path, typ)
	}
	w, err := openWatched("reply filter", path, false, ParseReplyFilter)
	if err != nil {
		return nil, err
	}
	return &ReplyFilter{file: w}, nil
}

// Reload reads a reply filter file again now if it changed (SIGHUP), and
// says whether a new version is in force, or why not (FILE:LINE: ...).
func (f *ReplyFilter) Reload() (changed bool, err error) {
	if f == nil || f.file == nil {
		return false, nil
	}
	return f.file.Reload()
}

// ParseReplyFilter parses the text of a reply filter file; name is the
// file name that errors start with.
func ParseReplyFilter(name string, data []byte) (*ReplyFilter, error) {
	var errs []error
	errorf := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	f := &ReplyFilter{}
	var open []int // the ifs not yet closed
	for _, ll := range filterLines(string(data)) {
		s := ll.text
		switch {
		case filterKeyword(s, "if"):
			pat, neg, rest, err := parseFilterPattern(s[2:])
			if err != "" {
				errorf(ll.line, "%s", err)
				pat = regexp.MustCompile(`\A\z`) // keep the block structure
			} else if strings.TrimSpace(rest) != "" {
				errorf(ll.line, "text after the pattern of an if: %q", clipReplyText(strings.TrimSpace(rest)))
			}
			open = append(open, len(f.rules))
			f.rules = append(f.rules, filterRule{re: pat, negate: neg, isIf: true})
		case filterKeyword(s, "endif"):
			if len(open) == 0 {
				errorf(ll.line, "endif without an if")
				continue
			}
			if strings.TrimSpace(s[5:]) != "" {
				errorf(ll.line, "text after endif")
			}
			f.rules[open[len(open)-1]].end = len(f.rules)
			open = open[:len(open)-1]
		default:
			pat, neg, rest, err := parseFilterPattern(s)
			if err != "" {
				errorf(ll.line, "%s", err)
				continue
			}
			res := strings.TrimSpace(rest)
			if res == "" {
				errorf(ll.line, "no result after the pattern")
				continue
			}
			tpl, err := parseResult(res, pat.NumSubexp())
			if err != "" {
				errorf(ll.line, "%s", err)
				continue
			}
			if neg && len(tpl) > 0 && hasRef(tpl) {
				errorf(ll.line, "$N in the result of a negated pattern, which has no groups when it applies")
				continue
			}
			// A result that starts with a group is checked when it is used.
			if tpl[0].ref == 0 && (len(tpl) == 1 || len(tpl[0].lit) >= 4) && !startsWithCode(tpl[0].lit) {
				errorf(ll.line, "result %q is not a reply: it must start with a 2xx, 4xx or 5xx code", clipReplyText(res))
				continue
			}
			f.rules = append(f.rules, filterRule{re: pat, negate: neg, result: tpl})
		}
	}
	for range open {
		errorf(lastFilterLine(data), "if without endif")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

type filterLine struct {
	line int
	text string
}

// filterLines joins continuation lines (starting with whitespace) to the
// line before and drops blank and comment lines, as Postfix reads tables.
func filterLines(data string) []filterLine {
	var out []filterLine
	// The last line's text, with its continuations, is built here and set
	// when the next line starts: appending each continuation to the
	// string took time quadratic in them.
	var cur strings.Builder
	flush := func() {
		if len(out) > 0 {
			out[len(out)-1].text = cur.String()
		}
	}
	for i, l := range strings.Split(data, "\n") {
		l = strings.TrimRight(l, "\r")
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(out) > 0 {
			cur.WriteString(l)
			continue
		}
		flush()
		cur.Reset()
		cur.WriteString(t)
		out = append(out, filterLine{line: i + 1, text: t})
	}
	flush()
	return out
}

func lastFilterLine(data []byte) int {
	return strings.Count(strings.TrimRight(string(data), "\n"), "\n") + 1
}

// filterKeyword reports whether s starts with the word kw, as Postfix
// recognises "if" and "endif".
func filterKeyword(s, kw string) bool {
	if len(s) < len(kw) || !strings.EqualFold(s[:len(kw)], kw) {
		return false
	}
	if len(s) == len(kw) {
		return true
	}
	c := s[len(kw)]
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isReplyDigit(c))
}

// parseFilterPattern reads [!]/pattern/flags from the start of s.
func parseFilterPattern(s string) (re *regexp.Regexp, negate bool, rest, problem string) {
	s = strings.TrimLeft(s, " \t")
	for strings.HasPrefix(s, "!") {
		negate = !negate
		s = strings.TrimLeft(s[1:], " \t")
	}
	if s == "" {
		return nil, false, "", "missing pattern"
	}
	d := s[0]
	if d < '!' || d > '~' || d == '\\' || isReplyDigit(d) || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' {
		return nil, false, "", fmt.Sprintf("line %q: want /pattern/ result, if /pattern/ or endif", clipReplyText(s))
	}
	i := 1
	for ; i < len(s) && s[i] != d; i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++ // a backslash protects the delimiter, and stays
		}
	}
	if i >= len(s) {
		return nil, false, "", fmt.Sprintf("no closing %c after the pattern in %q", d, clipReplyText(s))
	}
	expr, s := s[1:i], s[i+1:]
	j := 0
	for j < len(s) && s[j] != ' ' && s[j] != '\t' {
		j++
	}
	caseless, dotall, multiline := true, true, false
	for _, c := range s[:j] {
		switch c {
		case 'i':
			caseless = !caseless
		case 's':
			dotall = !dotall
		case 'm':
			multiline = !multiline
		default:
			return nil, false, "", fmt.Sprintf("pattern flag %q is not supported (i, m and s are)", c)
		}
	}
	flags := ""
	if caseless {
		flags += "i"
	}
	if dotall {
		flags += "s"
	}
	if multiline {
		flags += "m"
	}
	if flags != "" {
		expr = "(?" + flags + ")" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, false, "", fmt.Sprintf("pattern: %v", err)
	}
	return re, negate, s[j:], ""
}

// parseResult parses a result: literal text with $N, ${N}, $(N) and $$.
func parseResult(s string, groups int) ([]tplPart, string) {
	var parts []tplPart
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i++
			continue
		}
		j, close := i+1, byte(0)
		if j < len(s) && (s[j] == '{' || s[j] == '(') {
			close = '}'
			if s[j] == '(' {
				close = ')'
			}
			j++
		}
		k := j
		for k < len(s) && isReplyDigit(s[k]) {
			k++
		}
		if k == j || close != 0 && (k >= len(s) || s[k] != close) {
			return nil, fmt.Sprintf("%q in the result: want $N, ${N}, $(N) or $$", clipReplyText(s[i:]))
		}
		n, err := strconv.Atoi(s[j:k])
		if err != nil || n == 0 || n > groups {
			return nil, fmt.Sprintf("$%s in the result, but the pattern has %d groups", s[j:k], groups)
		}
		if lit.Len() > 0 {
			parts = append(parts, tplPart{lit: lit.String()})
			lit.Reset()
		}
		parts = append(parts, tplPart{ref: n})
		i = k
		if close == 0 {
			i--
		}
	}
	if lit.Len() > 0 || len(parts) == 0 {
		parts = append(parts, tplPart{lit: lit.String()})
	}
	return parts, ""
}

func hasRef(tpl []tplPart) bool {
	for _, p := range tpl {
		if p.ref > 0 {
			return true
		}
	}
	return false
}

// startsWithCode reports whether s starts with a reply code that a client
// may hear (2xx, 4xx, 5xx), followed by a space, a '-' or nothing.
func startsWithCode(s string) bool {
	return len(s) >= 3 && (s[0] == '2' || s[0] == '4' || s[0] == '5') &&
		isReplyDigit(s[1]) && isReplyDigit(s[2]) && (len(s) == 3 || s[3] == ' ' || s[3] == '-')
}

// Rewrite returns the reply the client hears instead of reply (as the
// server sent it, one line per line, or Postfix-joined), on one line,
// Postfix-joined, and whether a rule matched. Every rule applies as
// written: use RewriteFor when the reply refused a message.
func (f *ReplyFilter) Rewrite(reply string) (string, bool) {
	return f.rewrite(reply, true)
}

// RewriteFor is Rewrite for the reply to a relayed message, knowing
// whether its encapsulated copy was sent: a rule that would turn the
// refusal (4xx, 5xx) into a success (2xx), which is what "forwarded
// encapsulated, so tell the sender it was delivered" rules do, is skipped
// unless encapsulated is true, and the next rule is tried. A message that
// was not forwarded is never reported as delivered.
func (f *ReplyFilter) RewriteFor(reply string, encapsulated bool) (string, bool) {
	return f.rewrite(reply, encapsulated)
}

func (f *ReplyFilter) rewrite(reply string, success bool) (string, bool) {
	if f != nil && f.file != nil {
		f = f.file.get()
	}
	if f == nil || len(f.rules) == 0 {
		return reply, false
	}
	whole := joinLines(reply)
	lines := splitReply(whole)
	code := 0
	if lines != nil {
		code = lines[0].code
	}
	allowed := func(res string) bool {
		return success || res == "" || res[0] != '2' || code < 400
	}
	if res, ok := f.lookup(Normalize(whole), allowed); ok {
		if code == 0 {
			return res, true
		}
		return coherent(splitFields(strings.Fields(res), true, []int{code}), false), true
	}
	// Postfix's way: each line on its own.
	var raw []string
	if strings.ContainsAny(reply, "\r\n") {
		raw = inputLines(reply)
	} else {
		for _, l := range lines {
			raw = append(raw, l.String())
		}
	}
	if len(raw) < 2 {
		return reply, false
	}
	changed := false
	out := make([]replyLine, 0, len(raw))
	for _, r := range raw {
		if res, ok := f.lookup(r, allowed); ok {
			r, changed = res, true
		}
		out = append(out, oneLine(r))
	}
	if !changed {
		return reply, false
	}
	res := coherent(out, true)
	if !allowed(res) {
		// The last line's code decides (Postfix's rule): a rewrite of an
		// earlier line must not leave a success behind either.
		return reply, false
	}
	return res, true
}

// oneLine parses one line of a reply; a line without a code has code 0.
func oneLine(s string) replyLine {
	f := strings.Fields(s)
	if len(f) == 0 {
		return replyLine{}
	}
	l, n, ok := parsePrefix(f, 0, 0)
	if !ok {
		return replyLine{text: strings.Join(f, " ")}
	}
	words := f[n:]
	if l.text != "" {
		words = append([]string{l.text}, words...)
	}
	l.text = strings.Join(words, " ")
	return l
}

// lookup applies the rules to s: the first match whose result is a reply
// and is allowed wins.
func (f *ReplyFilter) lookup(s string, allowed func(string) bool) (string, bool) {
	for i := 0; i < len(f.rules); {
		r := &f.rules[i]
		if r.isIf {
			if r.re.MatchString(s) != r.negate {
				i++
			} else {
				i = r.end
			}
			continue
		}
		i++
		var loc []int
		if r.negate {
			if r.re.MatchString(s) {
				continue
			}
		} else if loc = r.re.FindStringSubmatchIndex(s); loc == nil {
			continue
		}
		res := expand(r.result, s, loc)
		if startsWithCode(res) && allowed(res) {
			return res, true
		}
	}
	return "", false
}

func expand(tpl []tplPart, s string, loc []int) string {
	var b strings.Builder
	for _, p := range tpl {
		if p.ref == 0 {
			b.WriteString(p.lit)
		} else if 2*p.ref+1 < len(loc) && loc[2*p.ref] >= 0 {
			b.WriteString(s[loc[2*p.ref]:loc[2*p.ref+1]])
		}
	}
	return b.String()
}

// coherent writes lines as one reply: every line gets the code and the
// enhanced code of the last line (fromLast, Postfix's rule) or the first.
// A line without a code of its own (a continuation of a rewritten line)
// keeps only its text.
func coherent(lines []replyLine, fromLast bool) string {
	ref := lines[0]
	if fromLast || ref.code == 0 {
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i].code != 0 {
				ref = lines[i]
				break
			}
		}
	}
	if ref.code == 0 {
		texts := make([]string, 0, len(lines))
		for _, l := range lines {
			texts = append(texts, l.text)
		}
		return strings.Join(texts, " ")
	}
	enh := ref.enh
	if enh == "" && fromLast && lines[0].enh != "" && lines[0].enh[0] == byte('0'+ref.code/100) {
		enh = lines[0].enh // Postfix takes the enhanced code from the first line
	}
	texts := make([]string, 0, len(lines))
	for _, l := range lines {
		texts = append(texts, l.text)
	}
	return joinReply(ref.code, enh, texts)
}
