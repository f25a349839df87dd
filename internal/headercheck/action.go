package headercheck

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// kind is what a header_checks(5) action does.
type kind int

const (
	actDunno    kind = iota // DUNNO, and its old synonym OK: as if nothing matched
	actIgnore               // delete the line
	actStrip                // delete the line and log it
	actReplace              // replace the line with the text
	actPrepend              // insert the text as a line before this one
	actReject               // refuse the message; stop checking
	actDiscard              // accept and drop the message; stop checking
	actHold                 // put the message on hold
	actWarn                 // log a warning
	actInfo                 // log
	actFilter               // route through a content filter
	actRedirect             // send to one address instead; stop checking
	actBCC                  // add a recipient
	actPass                 // stop checking
)

// kindNames are the commands Postfix's cleanup(8) carries out for
// header_checks and body_checks (cleanup_act() in cleanup_message.c), and
// OK, the old synonym of DUNNO. PASS and STRIP are newer than some
// header_checks(5) pages; DELAY is compiled out of Postfix and numeric
// reply codes are access(5) only, so both are refused here rather than
// ignored with a warning at every match, as Postfix would.
var kindNames = [...]string{
	actDunno: "DUNNO", actIgnore: "IGNORE", actStrip: "STRIP", actReplace: "REPLACE",
	actPrepend: "PREPEND", actReject: "REJECT", actDiscard: "DISCARD", actHold: "HOLD",
	actWarn: "WARN", actInfo: "INFO", actFilter: "FILTER", actRedirect: "REDIRECT",
	actBCC: "BCC", actPass: "PASS",
}

func commandKindByName(upper string) (kind, bool) {
	if upper == "OK" {
		return actDunno, true
	}
	for k, name := range kindNames {
		if name == upper {
			return kind(k), true
		}
	}
	return 0, false
}

const knownActions = "BCC, DISCARD, DUNNO, FILTER, HOLD, IGNORE, INFO, OK, PASS, PREPEND, REDIRECT, REPLACE, REJECT, STRIP or WARN"

// action is one parsed table result.
type action struct {
	kind kind
	text string // the optional text or argument
}

// splitCommand splits a result as cleanup(8) does: the command ends at the
// first space or tab, and the text starts after the whitespace that
// follows it.
func splitCommand(value string) (cmd, text string) {
	i := strings.IndexAny(value, " \t")
	if i < 0 {
		return value, ""
	}
	return value[:i], strings.TrimLeft(value[i:], " \t\n\v\f\r")
}

func commandKind(cmd string) (kind, error) {
	if k, ok := commandKindByName(table.ASCIIUpper(cmd)); ok {
		return k, nil
	}
	if len(cmd) == 3 && (cmd[0] == '4' || cmd[0] == '5') && isDigits(cmd) {
		return 0, errors.New("header_checks(5) has no numeric reply codes; write REJECT 5.7.1 text (or 4.7.1 for a temporary failure)")
	}
	return 0, errors.New("unknown action " + quote(cmd) + "; want " + knownActions)
}

// checkText checks what an action requires of its text.
func checkText(k kind, text string, inHeader bool) error {
	switch k {
	case actFilter:
		return table.CheckFilter(text)
	case actRedirect, actBCC:
		// The target becomes an envelope recipient, written into the
		// spool after the client heard 250: it must be one that reads
		// back (no blank outside quotes, a domain), as access(5)'s.
		if a, err := envelope.Parse(text); err != nil || a.Domain == "" || !strings.Contains(text, "@") {
			return errors.New(kindName(k) + " requires user@domain")
		}
	case actReplace, actPrepend:
		if text == "" {
			return errors.New(kindName(k) + " requires text")
		}
		if inHeader && !table.IsHeader(text) {
			return errors.New(kindName(k) + " text " + quote(clip(text)) + " is not a header; want \"Name: value\"")
		}
	}
	return nil
}

func kindName(k kind) string { return kindNames[k] }

// parseAction parses a result after substitution, for use.
func parseAction(value string, inHeader bool) (action, error) {
	cmd, text := splitCommand(value)
	k, err := commandKind(cmd)
	if err != nil {
		return action{}, err
	}
	if err := checkText(k, text, inHeader); err != nil {
		return action{}, err
	}
	return action{kind: k, text: text}, nil
}

// validate checks the action of every rule in a table file and returns the
// problems as table.ParseErrors, joined. Parts that contain a $
// substitution are known only after a match and are checked then.
func validate(file string, data []byte, inHeader bool) error {
	var errs []error
	for _, r := range ruleResults(string(data)) {
		cmd, text := splitCommand(r.result)
		if strings.Contains(cmd, "$") {
			continue
		}
		k, err := commandKind(cmd)
		if err == nil && !strings.Contains(text, "$") {
			err = checkText(k, text, inHeader)
			// Postfix turns a 2.x.x REJECT code into 4.x.x with a
			// warning at every match; a table that says so is a mistake.
			if word, _ := cutSpace(text); err == nil && k == actReject && reply.IsEnhanced(word) && word[0] == '2' {
				err = errors.New("REJECT status code " + word + ": want 4.x.x or 5.x.x")
			}
		}
		if err != nil {
			errs = append(errs, &table.ParseError{File: file, Line: r.line, Msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// rule is the result of one pattern rule in a table file.
type rule struct {
	line   int
	result string
}

// ruleResults finds the result of every pattern rule in a regexp_table(5)
// or pcre_table(5) file, to validate it as an action. Matching is the
// table package's business; this only steps over the patterns, the way
// that package's parser does: logical lines as Postfix's readllines()
// makes them (comment and blank lines dropped, a line that starts with
// whitespace continues the one before, a trailing CR removed), then
// [!]/pattern/flags, optionally a second !/pattern/flags right after the
// flags, then the result. Lines it cannot step over are left to the table
// package, which reports them.
func ruleResults(data string) []rule {
	var out []rule
	for _, l := range table.LogicalLines(data) {
		s := l.Text
		if s == "" || isAlnum(s[0]) { // if, endif or a bad line
			continue
		}
		rest, ok := skipPattern(s)
		if ok && strings.HasPrefix(rest, "!") {
			rest, ok = skipPattern(rest)
		}
		if result := trimSpace(rest); ok && result != "" {
			out = append(out, rule{line: l.Line, result: result})
		}
	}
	return out
}

// skipPattern steps over [!...]/pattern/flags at the start of s and
// returns what follows the flags.
func skipPattern(s string) (string, bool) {
	s = trimLeft(s)
	for strings.HasPrefix(s, "!") {
		s = trimLeft(s[1:])
	}
	if s == "" || isAlnum(s[0]) || s[0] >= utf8.RuneSelf || s[0] == '\\' {
		return "", false
	}
	delim := s[0]
	i := 1
	for ; i < len(s) && s[i] != delim; i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
	}
	if i >= len(s) {
		return "", false
	}
	s = s[i+1:]
	j := 0
	for j < len(s) && !isSpace(s[j]) && s[j] != '!' {
		j++
	}
	return s[j:], true
}

// rejectReply is the reply for REJECT text, as cleanup(8) and smtpd(8)
// make it: an RFC 3463 code at the start of the text is used, else 5.7.1;
// a 2.x.x code becomes 4.x.x; 4.x.x is a 451 reply, anything else 550.
// Without text (or with a code alone) the text is "message content
// rejected".
func rejectReply(text string) (code int, enhanced, msg string) {
	enhanced, msg = "5.7.1", text
	if word, rest := cutSpace(text); reply.IsEnhanced(word) {
		enhanced, msg = word, rest
	}
	if enhanced[0] == '2' {
		enhanced = "4" + enhanced[1:]
	}
	if msg == "" {
		msg = "message content rejected"
	}
	code = 550
	if enhanced[0] == '4' {
		code = 451
	}
	return code, enhanced, table.Printable(msg)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isSpace is C's isspace in the C locale, as Postfix uses it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func trimLeft(s string) string {
	for s != "" && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

func trimSpace(s string) string {
	s = trimLeft(s)
	for s != "" && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// cutSpace splits off the first word.
func cutSpace(s string) (word, rest string) {
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return s[:i], trimLeft(s[i:])
		}
	}
	return s, ""
}

// clip shortens s to 200 bytes, as Postfix logs a matched line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

func quote(s string) string { return "\"" + table.Printable(clip(s)) + "\"" }
