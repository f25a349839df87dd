package table

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// Kind is what an access(5) action does.
type Kind int

// The access(5) actions.
const (
	// OK accepts: "OK" (or its synonym "RELAY"), or an all-numeric
	// value, kept in Arg.
	OK Kind = iota + 1
	// Reject refuses: "REJECT [text]" with Code 0, meaning
	// access_map_reject_code (554), or "4NN text" / "5NN text" with the
	// explicit Code; a 4NN reply is temporary.
	Reject
	// Defer refuses temporarily: "DEFER [text]", access_map_defer_code (450).
	Defer
	// DeferIfReject defers if a later restriction would reject.
	DeferIfReject
	// DeferIfPermit defers if a later restriction would permit.
	DeferIfPermit
	// Discard accepts and silently discards the message; Text is logged.
	Discard
	// Hold accepts and puts the message on hold; Text is logged.
	Hold
	// Dunno stops the search as if nothing matched.
	Dunno
	// Warn logs Text and goes on.
	Warn
	// Info logs Text and goes on.
	Info
	// Filter sends the message through the content filter in Arg
	// (transport:destination).
	Filter
	// Prepend adds the header in Arg ("Name: value").
	Prepend
	// Redirect sends the message to Arg (user@domain) instead.
	Redirect
	// BCC sends a copy of the message to Arg (user@domain).
	BCC
	// Restriction applies the restrictions listed in Arg, such as
	// "permit_mynetworks, reject_unauth_destination".
	Restriction
)

var kindNames = [...]string{
	OK: "OK", Reject: "REJECT", Defer: "DEFER", DeferIfReject: "DEFER_IF_REJECT",
	DeferIfPermit: "DEFER_IF_PERMIT", Discard: "DISCARD", Hold: "HOLD",
	Dunno: "DUNNO", Warn: "WARN", Info: "INFO", Filter: "FILTER",
	Prepend: "PREPEND", Redirect: "REDIRECT", BCC: "BCC", Restriction: "restriction",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Action is a parsed access(5) table result.
type Action struct {
	Kind Kind
	// Code is the SMTP reply code of a "4NN text" or "5NN text" action;
	// 0 for the keyword actions, whose code is a configuration default.
	Code int
	// Enhanced is the RFC 3463 status code given at the start of the text
	// of a Reject, Defer or DeferIf* action, such as "5.7.1"; or "".
	Enhanced string
	// Text is the reply or log text, without the enhanced code.
	Text string
	// Arg is the argument of Filter, Prepend, Redirect, BCC and
	// Restriction, and the digits of an all-numeric OK.
	Arg string
}

// ParseAction parses an access(5) result. Keywords are matched without
// regard to case, in Postfix's order. An unknown keyword or restriction
// name is an error; see ParseActionWithClasses for restriction classes.
func ParseAction(value string) (Action, error) {
	return ParseActionWithClasses(value, nil)
}

// ParseActionWithClasses is ParseAction that also accepts the names of
// smtpd_restriction_classes in a restriction list.
func ParseActionWithClasses(value string, classes []string) (Action, error) {
	v := trimSpace(value)
	if v == "" {
		return Action{}, errors.New("table: empty action")
	}
	// Postfix splits the keyword at the first space or tab.
	word, text := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		word, text = v[:i], trimLeft(v[i:])
	}
	switch ASCIIUpper(word) {
	case "DUNNO":
		return Action{Kind: Dunno, Text: text}, nil
	case "REJECT":
		return withDSN(Reject, text), nil
	case "DEFER":
		return withDSN(Defer, text), nil
	case "DEFER_IF_REJECT":
		return withDSN(DeferIfReject, text), nil
	case "DEFER_IF_PERMIT":
		return withDSN(DeferIfPermit, text), nil
	case "INFO":
		return Action{Kind: Info, Text: text}, nil
	case "WARN":
		return Action{Kind: Warn, Text: text}, nil
	case "HOLD":
		return Action{Kind: Hold, Text: text}, nil
	case "DISCARD":
		return Action{Kind: Discard, Text: text}, nil
	case "FILTER":
		if err := CheckFilter(text); err != nil {
			return Action{}, fmt.Errorf("table: %q: %w", clip(value), err)
		}
		return Action{Kind: Filter, Arg: text}, nil
	case "REDIRECT", "BCC":
		// The target becomes an envelope recipient: it must be one
		// (no control characters, no line breaks, a domain).
		if a, err := envelope.Parse(text); err != nil || a.Domain == "" || !strings.Contains(text, "@") {
			return Action{}, fmt.Errorf("table: %q: %s requires a user@domain target", clip(value), ASCIIUpper(word))
		}
		k := Redirect
		if ASCIIUpper(word) == "BCC" {
			k = BCC
		}
		return Action{Kind: k, Arg: text}, nil
	case "PREPEND":
		if !IsHeader(text) || strings.ContainsFunc(text, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return Action{}, fmt.Errorf("table: %q: PREPEND requires a header, as in \"X-Header: text\"", clip(value))
		}
		return Action{Kind: Prepend, Arg: text}, nil
	case "OK", "RELAY":
		// Postfix ignores text after OK; it is kept so String round-trips.
		return Action{Kind: OK, Text: text}, nil
	}
	if allDigits(v) {
		return Action{Kind: OK, Arg: v}, nil
	}
	if len(word) == 3 && allDigits(word) && (word[0] == '4' || word[0] == '5') && text != "" {
		code, _ := strconv.Atoi(word)
		a := withDSN(Reject, text)
		a.Code = code
		return a, nil
	}
	if strings.Contains(v, ":") {
		return Action{}, fmt.Errorf("table: %q: lookup tables are not allowed in access table results; define a restriction class and give its name", clip(value))
	}
	if err := checkRestrictions(v, classes); err != nil {
		return Action{}, fmt.Errorf("table: %q: %w", clip(value), err)
	}
	return Action{Kind: Restriction, Arg: v}, nil
}

// withDSN splits an optional leading enhanced status code off text, as
// Postfix's dsn_split() does.
func withDSN(k Kind, text string) Action {
	a := Action{Kind: k, Text: text}
	word, rest := text, ""
	if i := strings.IndexFunc(text, func(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) }); i >= 0 {
		word, rest = text[:i], trimLeft(text[i:])
	}
	if reply.IsEnhanced(word) {
		a.Enhanced, a.Text = word, rest
	}
	return a
}

// IsHeader reports "Name: value" where Name is printable ASCII without
// ':' or space, then optional spaces or tabs, then ':', as Postfix's
// is_header() requires.
func IsHeader(s string) bool {
	i := 0
	for i < len(s) && s[i] > ' ' && s[i] < 0x7f && s[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i < len(s) && s[i] == ':'
}

// restrictionArgs gives the Postfix restrictions that may appear in an
// access table result, with the number of arguments each takes. Those
// that take a lookup table cannot appear: Postfix refuses ':' in results.
var restrictionArgs = restrictionTable(
	// No argument.
	`permit reject defer defer_if_permit defer_if_reject warn_if_reject
	reject_unauth_pipelining reject_plaintext_session permit_inet_interfaces
	permit_mynetworks permit_sasl_authenticated permit_tls_clientcerts
	permit_tls_all_clientcerts reject_unknown_client_hostname
	reject_unknown_client reject_unknown_reverse_client_hostname
	reject_invalid_helo_hostname reject_invalid_hostname
	reject_non_fqdn_helo_hostname reject_non_fqdn_hostname
	reject_unknown_helo_hostname reject_unknown_hostname
	reject_non_fqdn_sender reject_unknown_sender_domain reject_unlisted_sender
	reject_unverified_sender reject_sender_login_mismatch
	reject_known_sender_login_mismatch reject_authenticated_sender_login_mismatch
	reject_unauthenticated_sender_login_mismatch
	permit_auth_destination reject_unauth_destination defer_unauth_destination
	permit_mx_backup reject_non_fqdn_recipient reject_unknown_recipient_domain
	reject_unlisted_recipient check_recipient_maps reject_unverified_recipient
	reject_multi_recipient_bounce`,
	// One argument: a DNS list domain, or seconds for sleep.
	`reject_rbl_client reject_rbl reject_rhsbl_client reject_rhsbl_reverse_client
	permit_dnswl_client permit_rhswl_client reject_rhsbl_helo reject_rhsbl_sender
	reject_rhsbl_recipient sleep`,
)

func restrictionTable(byArgs ...string) map[string]int {
	m := make(map[string]int)
	for n, names := range byArgs {
		for _, name := range strings.Fields(names) {
			m[name] = n
		}
	}
	return m
}

// checkRestrictions validates a restriction list: every name is a known
// restriction or one of classes, and each restriction has its arguments.
func checkRestrictions(v string, classes []string) error {
	names := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r < utf8.RuneSelf && isSpace(byte(r)) })
	for i := 0; i < len(names); i++ {
		name := asciiLower(names[i])
		if n, ok := restrictionArgs[name]; ok {
			if i+n >= len(names) {
				return fmt.Errorf("restriction %s requires an argument", name)
			}
			i += n
			continue
		}
		known := false
		for _, c := range classes {
			if asciiLower(c) == name {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("unknown action or restriction %q", clip(names[i]))
		}
	}
	return nil
}

// String is the action in access(5) syntax; ParseAction(a.String()) gives
// a back.
func (a Action) String() string {
	switch a.Kind {
	case OK:
		if a.Arg != "" {
			return a.Arg
		}
		return join("OK", a.Text)
	case Reject:
		if a.Code != 0 {
			return join(strconv.Itoa(a.Code), a.Enhanced, a.Text)
		}
		return join("REJECT", a.Enhanced, a.Text)
	case Defer, DeferIfReject, DeferIfPermit:
		return join(a.Kind.String(), a.Enhanced, a.Text)
	case Discard, Hold, Dunno, Warn, Info:
		return join(a.Kind.String(), a.Text)
	case Filter, Prepend, Redirect, BCC:
		return join(a.Kind.String(), a.Arg)
	case Restriction:
		return a.Arg
	}
	return a.Kind.String()
}

func join(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Reply is the SMTP reply Postfix gives for a Reject, Defer or DeferIf*
// action (for the others it returns code 0). The code is the action's
// own, or Postfix's default: 554 for REJECT (access_map_reject_code), 450
// for DEFER and DEFER_IF_* (access_map_defer_code). The enhanced code is
// the action's own, else defaultEnhanced, else 5.7.1 or 4.7.1, and its
// class is made to agree with the reply code, as Postfix does. Without
// text a reject says "Access denied" and a DEFER_IF_* "Service
// unavailable". Control characters and invalid UTF-8 in the text become
// spaces. Postfix prefixes the text with "<address>: Sender address
// rejected: " and the like; that part is the caller's.
func (a Action) Reply(defaultEnhanced string) (code int, enhanced, text string) {
	text = a.Text
	switch a.Kind {
	case Reject:
		code = a.Code
		if code == 0 {
			code = 554
		}
		if text == "" {
			text = "Access denied"
		}
	case Defer:
		code = 450
		if text == "" {
			text = "Access denied"
		}
	case DeferIfReject, DeferIfPermit:
		code = 450
		if text == "" {
			text = "Service unavailable"
		}
	default:
		return 0, "", ""
	}
	if code < 400 || code > 599 {
		return 450, "4.7.1", "Service unavailable"
	}
	enhanced = a.Enhanced
	if !reply.IsEnhanced(enhanced) {
		enhanced = defaultEnhanced
	}
	if !reply.IsEnhanced(enhanced) {
		enhanced = "5.7.1"
	}
	enhanced = strconv.Itoa(code/100) + enhanced[1:]
	return code, enhanced, Printable(text)
}

// Printable replaces control characters and invalid UTF-8 with spaces, so
// that a reply stays one line (Postfix's Printable()).
func Printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// ASCIIUpper and asciiLower fold ASCII letters only, like strncasecmp in
// the C locale: no Unicode letter folds into a keyword.
func ASCIIUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// ValidateActions parses every result in the table as an access(5) action
// (see ParseActionWithClasses) and returns each problem as a ParseError,
// joined. Results of regexp and pcre rules that contain $n substitutions
// are not checked, since their text is known only after a match.
func (t *Table) ValidateActions(classes []string) error {
	return t.ValidateResults(func(value string) error {
		_, err := ParseActionWithClasses(value, classes)
		return err
	})
}

// ValidateResults is ValidateActions with the caller's own check of each
// result (a restriction list in a result that the caller cannot run).
func (t *Table) ValidateResults(valid func(value string) error) error {
	file := t.path
	if file == "" {
		file = t.spec
	}
	var errs []error
	t.eachResult(func(line int, value string, literal bool) {
		if !literal {
			return
		}
		if err := valid(value); err != nil {
			msg := strings.TrimPrefix(err.Error(), "table: ")
			errs = append(errs, &ParseError{File: file, Line: line, Msg: msg})
		}
	})
	return errors.Join(errs...)
}

// Results calls fn with every result of the contents in force, in table
// order. A regexp or pcre result with $n substitutions is given with them
// left out: "${1}@example.com" as "@example.com".
func (t *Table) Results(fn func(value string)) {
	t.eachResult(func(_ int, value string, _ bool) { fn(value) })
}

// eachResult calls fn with every result of the contents in force and its
// line; literal is false for a result with substitutions, given with them
// left out.
func (t *Table) eachResult(fn func(line int, value string, literal bool)) {
	c := t.cur.Load()
	switch c.kind {
	case kindStatic:
		fn(1, c.static, true)
	case kindFixed:
		entries := make([]entry, 0, len(c.fixed))
		for _, e := range c.fixed {
			entries = append(entries, e)
		}
		slices.SortFunc(entries, func(a, b entry) int { return a.line - b.line })
		for _, e := range entries {
			fn(e.line, e.value, true)
		}
	case kindCIDR:
		for _, r := range c.cidr.rules {
			if !r.isIf {
				fn(r.line, r.result, true)
			}
		}
	case kindRegexp:
		for _, r := range c.re.rules {
			if !r.isIf {
				v, ok := r.result.literal()
				if !ok {
					v = r.result.expand("", nil)
				}
				fn(r.line, v, ok)
			}
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsRestriction reports whether name is one of the Postfix restrictions
// that may stand in an access table result.
func IsRestriction(name string) bool {
	_, ok := restrictionArgs[asciiLower(name)]
	return ok
}

// CheckFilter checks a content filter as Postfix writes content_filter and
// a FILTER action's argument, transport:destination. relaykeeper reaches
// every such filter by SMTP at the destination, so FILTER_README's simple
// content filter, a pipe(8) service whose next hop Postfix ignores and
// everyone writes "dummy" ("filter:dummy"), is refused: it would send each
// message to a host named dummy. That filter is a --filter "pipe:..." here.
func CheckFilter(spec string) error {
	tr, hop, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok || tr == "" {
		return errors.New("FILTER requires transport:destination")
	}
	if strings.EqualFold(strings.TrimSpace(hop), "dummy") {
		return fmt.Errorf("%q names a pipe(8) service (FILTER_README's simple content filter), which relaykeeper runs before accepting the message, as --filter \"pipe:/some/where/filter -f ${sender} -- ${recipient}\"; a content filter here is an SMTP server, transport:host:port (scan:[127.0.0.1]:10025)", spec)
	}
	return nil
}
