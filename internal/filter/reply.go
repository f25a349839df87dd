package filter

import (
	"strings"
)

// maxText bounds the reply text a filter can make the server send: an SMTP
// reply line is at most 512 octets with its code and CRLF (RFC 5321
// 4.5.3.1.5).
const maxText = 400

// defaultRejectText is E-MailRelay's text for a rejection without one.
const defaultRejectText = "rejected"

// parseOutput finds the rejection text in a program filter's standard
// output as E-MailRelay does: the first line of the form <<text>> or
// [[text]] gives the text, a second one the log-only reason. A line counts
// if it starts with "<<" and contains ">>" (or "[[" and "]]"); the text ends
// at the first closing mark. Lines end in LF, CRLF or CR. Without such a
// line text is empty; without a second one, reason is text.
func parseOutput(out string) (text, reason string) {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = strings.ReplaceAll(out, "\r", "\n")
	var found []string
	for line := range strings.SplitSeq(out, "\n") {
		var open, close string
		switch {
		case strings.HasPrefix(line, "<<"):
			open, close = "<<", ">>"
		case strings.HasPrefix(line, "[["):
			open, close = "[[", "]]"
		default:
			continue
		}
		end := strings.Index(line[len(open):], close)
		if end < 0 {
			continue
		}
		found = append(found, printable(line[len(open):len(open)+end]))
		if len(found) == 2 {
			break
		}
	}
	if len(found) > 0 {
		text = found[0]
	}
	reason = text
	if len(found) > 1 && found[1] != "" {
		reason = found[1]
	}
	return text, reason
}

// refusal turns a filter's rejection text into a Result. The text may start
// with a reply code from 400 to 599 and a space (E-MailRelay 2.5.1), then an
// enhanced status code of the same class (RFC 3463). A 5xx code, or none,
// gives Reject (default 550 5.7.1 "rejected"); a 4xx code gives TempFail
// with the filter's code and text, so that a filter can ask for a retry.
func refusal(text, reason string) Result {
	code, enh, rest := splitReply(printable(text))
	if rest == "" {
		rest = defaultRejectText
	}
	if reason = printable(reason); reason == "" {
		reason = rest
	}
	r := Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: rest, Reason: reason}
	if code != 0 {
		r.Code = code
		r.Enhanced = enh
		if enh == "" {
			r.Enhanced = string(rune('0'+code/100)) + ".7.1"
		}
		if code < 500 {
			r.Outcome = TempFail
		}
	}
	return r
}

// splitReply splits "550 5.7.1 text" into its parts. code is 0 if s does
// not start with a code from 400 to 599 followed by a space or the end;
// enh is empty if no enhanced code of the code's class follows.
func splitReply(s string) (code int, enh, rest string) {
	if len(s) < 3 || s[0] < '4' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) || (len(s) > 3 && s[3] != ' ') {
		return 0, "", s
	}
	code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	rest = strings.TrimLeft(s[3:], " ")
	word, after, _ := strings.Cut(rest, " ")
	if isEnhanced(word) && word[0] == s[0] {
		return code, word, strings.TrimLeft(after, " ")
	}
	return code, "", rest
}

// isEnhanced reports whether s is an enhanced status code, class.subject.detail
// with a class of 2, 4 or 5, a subject of 1 to 3 digits and a detail of 1 to
// 3 digits (RFC 3463 2).
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if !isDigit(p[i]) {
				return false
			}
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseNetReply interprets a reply line of E-MailRelay's network filter
// protocol: "ok", or "[CODE ]TEXT[<TAB>REASON]", where a code of 100 means
// abandon (E-MailRelay 2.6.1). The line has no line ending. As in
// E-MailRelay a line starting with "ok" is a pass; an empty line, which
// E-MailRelay also takes as a pass, is garbage here and gives TempFail.
func parseNetReply(line string) Result {
	if strings.HasPrefix(line, "ok") {
		return okResult()
	}
	if strings.TrimSpace(line) == "" {
		return tempFail("net filter: empty reply")
	}
	text, reason, _ := strings.Cut(line, "\t")
	if text == "100" || strings.HasPrefix(text, "100 ") {
		if reason = printable(reason); reason == "" {
			reason = printable(text[3:])
		}
		return Result{Outcome: Abandon, Reason: reason}
	}
	return refusal(text, reason)
}

// printable makes s safe for an SMTP reply or a log line: tabs become
// spaces, other bytes outside printable ASCII become '?', leading and
// trailing spaces go, and the result is cut at maxText bytes.
func printable(s string) string {
	b := make([]byte, 0, min(len(s), maxText))
	for i := 0; i < len(s) && len(b) < maxText; i++ {
		c := s[i]
		switch {
		case c == '\t':
			c = ' '
		case c < 0x20 || c > 0x7e:
			c = '?'
		}
		b = append(b, c)
	}
	return strings.TrimSpace(string(b))
}

// oneLine is printable for diagnostics, which may be longer.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, s)
}
