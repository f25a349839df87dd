package enforce

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The rules file says what to do about each refusal an upstream may send.
// It is read top to bottom and the first rule that matches decides:
//
//	# A comment: only at the start of a line ('#' may be part of a pattern).
//	rule gmail-unsolicited
//	    action   ban
//	    code     5xx 4xx
//	    enhanced 5.7.1 4.7.*
//	    text     likely unsolicited mail
//	    host     \.google\.com$
//	    gsmtp    yes
//
// Each line is a keyword and a value, the rest of the line; indentation is
// for the reader. "rule NAME" starts a rule; action (ban, block-domain,
// encapsulate, pace, alert, none or report) is required; the conditions are
// optional: code (550, 5xx, 55x) and enhanced (5.7.26, 5.7.*) match when
// any value listed does; every text must match; host once; gsmtp yes or no
// (the reply ends with Gmail's marker "gsmtp", or not). text and host are
// regular expressions (RE2 syntax, which takes POSIX extended expressions
// as written, except back-references), matched without regard to case
// anywhere in the value: text in the reply after Normalize, host in
// Reply.Host. A text pattern with a group named domain, (?P<domain>...),
// gives Verdict.Domain. A rule with no condition matches every refusal.
// "scope destination|recipient|account", for a pace or alert rule only,
// says what the scheduler holds back (Verdict.Scope; default destination).
//
// Classify never acts on a 2xx or 3xx reply, and a refusal (4xx, 5xx) that
// no rule matches is reported.

//go:embed default-rules.conf
var defaultRulesText string

// DefaultRulesText is the built-in rules file, the same text as
// etc/enforce-rules.conf.
func DefaultRulesText() string { return defaultRulesText }

// DefaultRules are the built-in rules for Gmail's refusals, parsed from
// DefaultRulesText.
func DefaultRules() *Rules {
	rs, err := ParseRules("enforce-rules.conf (built in)", []byte(defaultRulesText))
	if err != nil {
		panic(err) // a test parses the same text
	}
	return rs
}

// Rules is an ordered set of rules; the first that matches a refusal
// decides. Rules are immutable once parsed and safe for concurrent use;
// rules read from a file (LoadRules) follow the file as it changes. The
// zero value and nil have no rules: every refusal is reported.
type Rules struct {
	rules []rule
	file  *watched[*Rules] // LoadRules's: the version in force
}

type rule struct {
	name      string
	line      int
	action    Action
	hasAction bool
	codes     []string    // "550", "5xx", "55x": any of them
	enhanced  [][3]string // {"5", "7", "*"}: any of them
	texts     []*regexp.Regexp
	domainRe  int // index in texts of the pattern with (?P<domain>), or -1
	domainSub int
	host      *regexp.Regexp
	gsmtp     string // "", "yes" or "no"
	scope     Scope
	hasScope  bool
}

// LoadRules reads a rules file. Every problem in it is reported as
// FILE:LINE: message, joined with errors.Join; a file with any problem
// gives no rules.
// The file is read again when it changes (a bad version leaves the rules
// in force; Reload says why).
func LoadRules(path string) (*Rules, error) {
	w, err := openWatched("rules", path, false, ParseRules)
	if err != nil {
		return nil, err
	}
	return &Rules{file: w}, nil
}

// Reload reads a rules file again now if it changed (SIGHUP), and says
// whether new rules are in force, or why not (FILE:LINE: ...). Rules not
// read from a file have nothing to reload.
func (rs *Rules) Reload() (changed bool, err error) {
	if rs == nil || rs.file == nil {
		return false, nil
	}
	return rs.file.Reload()
}

// ParseRules parses the text of a rules file; name is the file name that
// errors start with.
func ParseRules(name string, data []byte) (*Rules, error) {
	p := &rulesParser{file: name, names: map[string]int{}}
	for i, line := range strings.Split(string(data), "\n") {
		p.line(i+1, strings.TrimRight(line, "\r"))
	}
	p.finish()
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return &Rules{rules: p.rules}, nil
}

type rulesParser struct {
	file  string
	rules []rule
	cur   *rule
	names map[string]int // rule name -> line
	errs  []error
}

func (p *rulesParser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, args...)))
}

var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (p *rulesParser) line(n int, s string) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '#' {
		return
	}
	kw, val, _ := strings.Cut(s, " ")
	if i := strings.IndexByte(kw, '\t'); i >= 0 {
		kw, val = kw[:i], s[i+1:]
	}
	kw, val = strings.ToLower(kw), strings.TrimSpace(val)
	if kw == "rule" {
		p.finish()
		switch {
		case val == "":
			p.errorf(n, "rule without a name")
		case !ruleName.MatchString(val):
			p.errorf(n, "rule name %q: use letters, digits, '.', '_' and '-'", clipReplyText(val))
		default:
			if prev, dup := p.names[val]; dup {
				p.errorf(n, "rule %q is already defined at line %d", val, prev)
			}
			p.names[val] = n
		}
		p.cur = &rule{name: val, line: n, domainRe: -1}
		return
	}
	switch kw {
	case "action", "code", "enhanced", "text", "host", "gsmtp", "scope":
	default:
		p.errorf(n, "unknown keyword %q (want rule, action, code, enhanced, text, host, gsmtp or scope)", clipReplyText(kw))
		return
	}
	if p.cur == nil {
		p.errorf(n, "%q before the first rule: start a rule with \"rule NAME\"", kw)
		return
	}
	if val == "" {
		p.errorf(n, "%s without a value", kw)
		return
	}
	r := p.cur
	switch kw {
	case "action":
		a, ok := ParseAction(val)
		switch {
		case r.hasAction:
			p.errorf(n, "second action in rule %q", r.name)
		case !ok:
			p.errorf(n, "unknown action %q (want none, ban, block-domain, encapsulate, pace, alert or report)", clipReplyText(val))
		default:
			r.action, r.hasAction = a, true
		}
	case "code":
		for _, c := range strings.Fields(val) {
			if err := checkCodePattern(c); err != "" {
				p.errorf(n, "code %q: %s", clipReplyText(c), err)
				continue
			}
			r.codes = append(r.codes, strings.ToLower(c))
		}
	case "enhanced":
		for _, e := range strings.Fields(val) {
			pat, err := parseEnhancedPattern(e)
			if err != "" {
				p.errorf(n, "enhanced %q: %s", clipReplyText(e), err)
				continue
			}
			r.enhanced = append(r.enhanced, pat)
		}
	case "text":
		re, err := regexp.Compile("(?i)" + val)
		if err != nil {
			p.errorf(n, "text: %v", err)
			return
		}
		if i := re.SubexpIndex("domain"); i > 0 && r.domainRe < 0 {
			r.domainRe, r.domainSub = len(r.texts), i
		}
		r.texts = append(r.texts, re)
	case "host":
		if r.host != nil {
			p.errorf(n, "second host in rule %q: join them with | in one pattern", r.name)
			return
		}
		re, err := regexp.Compile("(?i)" + val)
		if err != nil {
			p.errorf(n, "host: %v", err)
			return
		}
		r.host = re
	case "scope":
		sc, ok := ParseScope(strings.ToLower(val))
		switch {
		case r.hasScope:
			p.errorf(n, "second scope in rule %q", r.name)
		case !ok:
			p.errorf(n, "unknown scope %q (want destination, recipient or account)", clipReplyText(val))
		default:
			r.scope, r.hasScope = sc, true
		}
	case "gsmtp":
		v := strings.ToLower(val)
		switch {
		case r.gsmtp != "":
			p.errorf(n, "second gsmtp in rule %q", r.name)
		case v != "yes" && v != "no":
			p.errorf(n, "gsmtp %q: want yes or no", clipReplyText(val))
		default:
			r.gsmtp = v
		}
	}
}

// finish closes the rule being read.
func (p *rulesParser) finish() {
	r := p.cur
	if r == nil {
		return
	}
	p.cur = nil
	if !r.hasAction {
		p.errorf(r.line, "rule %q has no action", r.name)
		return
	}
	if r.hasScope && !r.action.KeepsMail() {
		p.errorf(r.line, "rule %q: scope applies to pace and alert only", r.name)
		return
	}
	p.rules = append(p.rules, *r)
}

// checkCodePattern checks a reply code pattern: three characters, each a
// digit or x, for a 4xx or 5xx reply.
func checkCodePattern(c string) string {
	if len(c) != 3 {
		return "want three digits, or x for any digit (550, 5xx, 55x)"
	}
	for i := 0; i < 3; i++ {
		if !isReplyDigit(c[i]) && c[i] != 'x' && c[i] != 'X' {
			return "want three digits, or x for any digit (550, 5xx, 55x)"
		}
	}
	if c[0] != '4' && c[0] != '5' {
		return "rules see only refusals: the code must start with 4 or 5"
	}
	return ""
}

// parseEnhancedPattern parses "5.7.26" or "5.7.*": three parts, each a
// number or *.
func parseEnhancedPattern(e string) ([3]string, string) {
	var pat [3]string
	parts := strings.Split(e, ".")
	if len(parts) != 3 {
		return pat, "want CLASS.SUBJECT.DETAIL, each a number or * (5.7.26, 5.7.*)"
	}
	for i, s := range parts {
		if s == "*" {
			pat[i] = s
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 999 || s[0] == '+' {
			return pat, "want CLASS.SUBJECT.DETAIL, each a number or * (5.7.26, 5.7.*)"
		}
		pat[i] = strconv.Itoa(v)
	}
	if pat[0] != "*" && pat[0] != "4" && pat[0] != "5" {
		return pat, "rules see only refusals: the class must be 4 or 5"
	}
	return pat, ""
}

// Classify says what to do about a reply: the action of the first rule
// that matches, None for a reply that is not a refusal (2xx, 3xx, or no
// code at all), Report for a refusal that no rule matches. The text the
// rules match is the reply's String; a Code or Enhanced left zero is read
// from its start.
func (rs *Rules) Classify(u Upstream) Verdict {
	text := joinLines(u.Reply.String())
	lines := splitReply(text)
	code, enh := u.Reply.Code, u.Reply.Enhanced
	if code == 0 && lines != nil {
		code = lines[0].code
	}
	if enh == "" && lines != nil && lines[0].code == code {
		enh = lines[0].enh
	}
	if code < 400 || code > 599 {
		return Verdict{Action: None}
	}
	norm := withoutEchoes(Normalize(text))
	m := match{
		code:  fmt.Sprintf("%03d", code),
		enh:   strings.Split(enh, "."),
		norm:  norm,
		host:  u.Host,
		gsmtp: endsGsmtp(norm),
	}
	if rs != nil && rs.file != nil {
		rs = rs.file.get()
	}
	if rs != nil {
		for i := range rs.rules {
			if v, ok := rs.rules[i].match(&m); ok {
				return v
			}
		}
	}
	return Verdict{Action: Report}
}

// withoutEchoes blanks what a reply quotes back from the envelope: a path
// in angle brackets ("<user@example.com>" becomes "<>") and a quoted
// string ("\"...\"" becomes "\"\""). A client chooses those; an upstream
// that echoes a recipient ("550 5.1.1 <\"unusual rate of unsolicited mail
// originating from your SPF domain [victim.example 30]\"@example.net>:
// Recipient address rejected") must not make the rules read Gmail's words
// in it, nor take the domain to block from it. Gmail's own texts have
// neither. Unquoted, an address holds no space, and every rule's phrase
// has one. An unterminated bracket or quote blanks the rest.
func withoutEchoes(s string) string {
	if !strings.ContainsAny(s, "<\"") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			b.WriteString(`""`)
			i = skipQuoted(s, i)
		case '<':
			b.WriteString("<>")
			i = pathEnd(s, i)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// pathEnd returns the index of the '>' that closes the path opened at
// s[i], past quoted strings in it. A quote that does not close ends at
// the first '>' after the '<' instead ("<x\"@example.com>", which Gmail
// refuses with 5.1.7): it must not blank Gmail's own words after it.
func pathEnd(s string, i int) int {
	first := strings.IndexByte(s[i:], '>')
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '>':
			return j
		case '"':
			if j = skipQuoted(s, j); j == len(s) {
				if first < 0 {
					return len(s)
				}
				return i + first
			}
		}
	}
	return len(s)
}

// skipQuoted returns the index of the quote that closes the quoted string
// opened at s[i] (a backslash escapes), or the end of s.
func skipQuoted(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(s)
}

// match is a reply prepared for the rules.
type match struct {
	code  string
	enh   []string // {"5", "7", "26"}, or {""} without one
	norm  string
	host  string
	gsmtp bool
}

func (r *rule) match(m *match) (Verdict, bool) {
	if len(r.codes) > 0 && !anyCode(r.codes, m.code) {
		return Verdict{}, false
	}
	if len(r.enhanced) > 0 && !anyEnhanced(r.enhanced, m.enh) {
		return Verdict{}, false
	}
	if r.gsmtp != "" && m.gsmtp != (r.gsmtp == "yes") {
		return Verdict{}, false
	}
	if r.host != nil && !r.host.MatchString(m.host) {
		return Verdict{}, false
	}
	v := Verdict{Action: r.action, Rule: r.name, Scope: r.scope}
	for i, re := range r.texts {
		if i != r.domainRe {
			if !re.MatchString(m.norm) {
				return Verdict{}, false
			}
			continue
		}
		sm := re.FindStringSubmatch(m.norm)
		if sm == nil {
			return Verdict{}, false
		}
		v.Domain = domainHint(sm[r.domainSub])
	}
	return v, true
}

func anyCode(pats []string, code string) bool {
	for _, p := range pats {
		if len(p) == 3 && len(code) == 3 &&
			(p[0] == 'x' || p[0] == code[0]) && (p[1] == 'x' || p[1] == code[1]) && (p[2] == 'x' || p[2] == code[2]) {
			return true
		}
	}
	return false
}

func anyEnhanced(pats [][3]string, enh []string) bool {
	if len(enh) != 3 {
		return false
	}
	for _, p := range pats {
		ok := true
		for i := range 3 {
			if p[i] != "*" && strings.TrimLeft(enh[i], "0") != strings.TrimLeft(p[i], "0") {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// domainHint returns s as a lower-case domain name, or "" if it does not
// look like one (an address literal, a bare word, junk).
func domainHint(s string) string {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if _, err := netip.ParseAddr(s); err == nil || !strings.Contains(s, ".") || len(s) > 253 {
		return ""
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return ""
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || isReplyDigit(c) || c == '-' || c == '_') {
				return ""
			}
		}
	}
	return s
}

// String is the verdict as relaykeeper enforce test prints it:
// "ban (rule gmail-unsolicited)", "report (no rule matched)".
func (v Verdict) String() string {
	switch {
	case v.Rule == "" && v.Action == Report:
		return "report (no rule matched)"
	case v.Rule == "":
		return v.Action.String()
	case v.Domain != "":
		return fmt.Sprintf("%s (rule %s, domain %s)", v.Action, v.Rule, v.Domain)
	case v.Scope != ScopeDestination:
		return fmt.Sprintf("%s (rule %s, scope %s)", v.Action, v.Rule, v.Scope)
	}
	return fmt.Sprintf("%s (rule %s)", v.Action, v.Rule)
}
