package enforce

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// A reply reaches the enforcer in one of three shapes, and every one of
// them must classify the same:
//
//   - as the server sent it, one line per reply line:
//     "550-5.7.1 ... is\n550-5.7.1 likely unsolicited mail. ...\n550 5.7.1 ... - gsmtp";
//   - as Postfix logs it, the lines joined by spaces, each keeping its
//     prefix: "550-5.7.1 ... is 550-5.7.1 likely unsolicited mail. ...";
//   - inside a Postfix log line: "host H[A] said: REPLY (in reply to end
//     of DATA command)".
//
// Normalize turns the first two into one canonical line, so that a rule's
// phrase matches even where Gmail broke the line in the middle of it.

// ParseReply reads a reply in any of the shapes above and returns it as
// one reply.Reply: its code, the enhanced code of its first line, and its
// lines, split where Postfix joined them, so that its String is the reply
// on one line as Postfix logs it. From a Postfix log fragment it also takes
// Host (the name before "[address] said:") and Stage ("mail", "rcpt" or
// "data" from "(in reply to ... command)").
func ParseReply(s string) (Upstream, error) {
	var u Upstream
	s = strings.TrimSpace(s)
	// A log fragment starts before the reply ("host H[A] said: 550 ...").
	// A reply that starts with its code is the reply whole: the servers'
	// texts quote addresses the client chose ("553 5.1.7 The sender
	// address <\"a] said: 421 4.7.28 ...\"@x>"), never to be read as
	// the start of another reply.
	if i := strings.Index(s, "] said: "); i >= 0 && !startsWithCode(s) {
		head := s[:i]
		s = s[i+len("] said: "):]
		if j := strings.LastIndex(head, "host "); j >= 0 {
			head = head[j+len("host "):]
		}
		if k := strings.IndexByte(head, '['); k >= 0 {
			u.Host = head[:k]
		}
	}
	if m := inReplyTo.FindStringSubmatchIndex(s); m != nil {
		u.Stage = stageOf(s[m[2]:m[3]])
		s = s[:m[0]]
	}
	text := joinLines(s)
	lines := splitReply(text)
	if lines == nil {
		return Upstream{}, fmt.Errorf("enforce: no reply code at the start of %q", clipReplyText(text))
	}
	for n := len(lines); n > 1 && lines[0].enh != "" && lines[n-1].sep == '-' && lines[n-1].enh == ""; n-- {
		// A last line that announces more ("534-0") without the
		// enhanced code the first line has is text: written back as a
		// last line ("534 0") it could not be told from text, and
		// String would not read back as this reply (FuzzClassify).
		lines = lines[:n-1]
	}
	texts := replyTexts(text, lines)
	for len(texts) > 1 && texts[len(texts)-1] == "" {
		// A last line with no text ("550-5.0.0 x 550-", or "550" alone)
		// adds nothing, and joined again it would read as the text of
		// the line before it.
		texts = texts[:len(texts)-1]
	}
	u.Reply = reply.Reply{Code: lines[0].code, Enhanced: lines[0].enh, Lines: texts}
	return u, nil
}

// replyTexts cuts text, a reply on one line that splitReply split into
// lines, at the start of each line and returns what follows each line's
// code and separator, as written, so that reply.Reply.String gives text
// back (up to the spaces between lines).
func replyTexts(text string, lines []replyLine) []string {
	starts := fieldStarts(text)
	out := make([]string, len(lines))
	for k, l := range lines {
		end := len(text)
		if k+1 < len(lines) {
			end = starts[lines[k+1].at]
		}
		seg := strings.TrimRight(text[starts[l.at]:end], " \t")
		if len(seg) > 4 {
			out[k] = seg[4:]
		}
	}
	return out
}

// fieldStarts is the byte offset of each of strings.Fields(s).
func fieldStarts(s string) []int {
	var starts []int
	in := false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && !in {
			starts = append(starts, i)
		}
		in = !space
	}
	return starts
}

var inReplyTo = regexp.MustCompile(`\s*\(in reply to (.+?) command\)\)?\s*$`)

func stageOf(cmd string) string {
	switch strings.ToUpper(cmd) {
	case "MAIL FROM":
		return "mail"
	case "RCPT TO":
		return "rcpt"
	case "END OF DATA":
		return "data"
	case "DATA":
		return "data command" // before the content (BeforeContent)
	}
	return ""
}

// joinLines joins a reply given one line per reply line the way Postfix
// logs it, with single spaces; a reply already on one line is unchanged.
func joinLines(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return strings.TrimSpace(s)
	}
	return strings.Join(inputLines(s), " ")
}

// inputLines splits s at line ends (LF or CRLF), dropping blank lines.
func inputLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, "\r \t")
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// Normalize is the text the rules' text patterns see: the reply on one
// line, the first line's prefix ("550-5.7.1") kept, the prefixes of the
// following lines ("550-5.7.1 ", "550 5.7.1 ") removed, and every run of
// whitespace made one space. So "... is likely\n550-5.7.1 unsolicited
// mail" and its Postfix-joined form both become "... is likely
// unsolicited mail".
//
// Only prefixes with the first line's code are removed, and only in a
// reply whose first line says more lines follow ("550-"): a number in the
// text of a one-line reply is left alone. Text without a reply code is only
// collapsed.
//
// A word made only of '?', and the '?'s that end a line, are left out:
// they are whitespace that Postfix's smtp client censored (smtp_chat_resp's
// printable), a tab at the end of a line ("... unsolicited mail\t", then
// "550-5.7.1 originating ..."), and would otherwise split Gmail's phrase
// ("mail ? originating", "from? your SPF domain") in the mail log that
// postfix-enforcer reads. No phrase of Gmail's holds a word of '?'s or
// ends a word in one.
func Normalize(text string) string {
	words := withoutCensored(strings.Fields(joinLines(text)))
	lines := splitFields(words, false, nil)
	if lines == nil {
		return strings.Join(words, " ")
	}
	texts := make([]string, 0, len(lines))
	for _, l := range lines {
		if t := strings.TrimRight(l.text, "?"); t != "" {
			texts = append(texts, t)
		}
	}
	first := lines[0]
	first.text = strings.Join(texts, " ")
	return first.String()
}

// withoutCensored returns words without those made only of '?' (see
// Normalize), in place.
func withoutCensored(words []string) []string {
	out := words[:0]
	for _, w := range words {
		if strings.Trim(w, "?") != "" {
			out = append(out, w)
		}
	}
	return out
}

// replyLine is one line of a reply: code, separator ('-' when more lines
// follow, ' ' on the last), enhanced code or "", and text with its
// whitespace collapsed.
type replyLine struct {
	at   int // the index of the line's first field in the split words
	code int
	sep  byte
	enh  string
	text string
}

// prefix is the line's prefix as written: "550-5.7.1", "550 ", "250-".
func (l replyLine) prefix() string {
	p := fmt.Sprintf("%03d%c", l.code, l.sep)
	if l.enh != "" {
		p += l.enh
	}
	return p
}

// needsSpace reports whether the prefix and text are written apart: always
// after an enhanced code, never after a bare "550-" or "550 " (whose
// separator is the space, or which is glued to the text as in
// "250-PIPELINING").
func (l replyLine) needsSpace() bool { return l.enh != "" }

// String is the line as a server would send it.
func (l replyLine) String() string {
	p := l.prefix()
	if l.text == "" {
		return strings.TrimRight(p, " ")
	}
	if l.needsSpace() {
		return p + " " + l.text
	}
	return p + l.text
}

// splitReply splits a reply on one line (Postfix-joined) into its lines,
// or returns nil if it does not start with a reply code. See Normalize for
// which prefixes count as line breaks.
func splitReply(text string) []replyLine {
	return splitFields(strings.Fields(text), false, nil)
}

// splitFields is splitReply on the reply's words. lenient splits at line
// prefixes even when the first line does not announce more lines, and
// also names more codes whose prefixes count: a reply rewritten by a
// filter ("554 5.7.0 $1") still holds the old code's prefixes.
func splitFields(f []string, lenient bool, also []int) []replyLine {
	if len(f) == 0 {
		return nil
	}
	first, n, ok := parsePrefix(f, 0, 0)
	if !ok {
		return nil
	}
	codes := append([]int{first.code}, also...)
	// A reply has more lines only if its first line says so; once a last
	// line ("550 5.7.1") has started, nothing after it is a prefix.
	more := first.sep == '-' || lenient
	var words []string
	if first.text != "" { // "250-PIPELINING": a word glued to the prefix
		words = append(words, first.text)
		first.text = ""
	}
	lines := []replyLine{first}
	flush := func() {
		lines[len(lines)-1].text = strings.Join(words, " ")
		words = words[:0]
	}
	i := n
	for i < len(f) {
		if more {
			if l, n, ok := parseLinePrefix(f, i, codes, first.enh != ""); ok {
				flush()
				l.at = i
				if l.text != "" {
					words = append(words, l.text)
					l.text = ""
				}
				lines = append(lines, l)
				i += n
				if l.sep == ' ' {
					more = false
				}
				continue
			}
		}
		words = append(words, f[i])
		i++
	}
	flush()
	return lines
}

// parsePrefix reads the reply code and enhanced code starting at f[i]
// (code 0: any) and returns how many fields they took. Text glued to a
// "250-" ("250-PIPELINING") is returned as the first word of the line.
func parsePrefix(f []string, i, code int) (l replyLine, n int, ok bool) {
	t := f[i]
	if len(t) < 3 || t[0] < '2' || t[0] > '5' || !isReplyDigit(t[1]) || !isReplyDigit(t[2]) {
		return l, 0, false
	}
	l.code = int(t[0]-'0')*100 + int(t[1]-'0')*10 + int(t[2]-'0')
	if code != 0 && l.code != code {
		return l, 0, false
	}
	switch {
	case len(t) == 3:
		l.sep = ' '
		if i+1 < len(f) && isEnhanced(f[i+1], t[0]) {
			l.enh = f[i+1]
			return l, 2, true
		}
		return l, 1, true
	case t[3] == '-':
		l.sep = '-'
		rest := t[4:]
		switch {
		case rest == "":
		case isEnhanced(rest, t[0]):
			l.enh = rest
		default:
			l.text = rest // "250-PIPELINING": the word is the line's text
		}
		return l, 1, true
	}
	return l, 0, false
}

// parseLinePrefix is parsePrefix for a line after the first: the code must
// be one of codes, and a bare "550" (the last line) counts only when it is
// followed by an enhanced code or the reply uses none (withEnh false).
func parseLinePrefix(f []string, i int, codes []int, withEnh bool) (replyLine, int, bool) {
	for _, c := range codes {
		l, n, ok := parsePrefix(f, i, c)
		if !ok {
			continue
		}
		if l.sep == ' ' && withEnh && l.enh == "" {
			continue
		}
		return l, n, true
	}
	return replyLine{}, 0, false
}

// isEnhanced reports whether s is an RFC 3463 status code for a reply
// whose code starts with c ("5.7.26" for a 5xx reply). A 4xx reply may
// carry a permanent enhanced code: Google prints "421 5.7.32" for a
// blocked message it answers with a temporary code.
func isEnhanced(s string, c byte) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 {
		return false
	}
	if class := parts[0][0]; class != c && !(c == '4' && class == '5') {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for j := 0; j < len(p); j++ {
			if !isReplyDigit(p[j]) {
				return false
			}
		}
	}
	return true
}

func isReplyDigit(c byte) bool { return c >= '0' && c <= '9' }

// joinReply writes lines as one reply on one line, Postfix-joined, every
// line with code and enhanced code (enh may be "") and the right
// separators.
func joinReply(code int, enh string, texts []string) string {
	var b strings.Builder
	for i, t := range texts {
		if i > 0 {
			b.WriteByte(' ')
		}
		sep := byte('-')
		if i == len(texts)-1 {
			sep = ' '
		}
		b.WriteString(replyLine{code: code, sep: sep, enh: enh, text: t}.String())
	}
	return b.String()
}

// endsGsmtp reports whether a normalised reply ends with Gmail's marker
// ("... <id> - gsmtp"), ignoring a closing parenthesis or full stop.
func endsGsmtp(norm string) bool {
	s := strings.TrimRight(norm, " .)")
	return len(s) >= 5 && strings.EqualFold(s[len(s)-5:], "gsmtp")
}

// clipReplyText shortens s for an error message.
func clipReplyText(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
