// Package reply is the SMTP reply as one value, from the wire to the log:
// a code, the RFC 3463 enhanced code of the first line, and the text of
// every line. The outbound client parses it, the scheduler records it, the
// enforcer classifies it, and the SMTP edge writes it back to a client; no
// one formats a reply into a string to parse it back later.
package reply

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Reply is one SMTP reply as the server sent it (RFC 5321 section 4.2).
// The zero Reply means "no reply".
type Reply struct {
	Code int
	// Enhanced is the RFC 3463 status code of the first line ("5.7.1"),
	// or empty if the server sent none.
	Enhanced string
	// Lines are the texts after the code and separator, one per line, each
	// with its enhanced code (if any) still in front.
	Lines []string
	// Local marks a reply that this relay made itself and no server sent
	// (a route's error, an address the upstream cannot take): it is never
	// blamed on the upstream, in a notice or by the enforcer.
	Local bool
}

// Account is a local reply as the relay's own account of the failure,
// without the reply code ("5.6.7 the upstream does not offer ..."), as
// Postfix records a failure it found itself; any other reply is String.
func (r Reply) Account() string {
	if !r.Local || r.Code == 0 {
		return r.String()
	}
	if r.Enhanced == "" {
		return r.Text()
	}
	return r.Enhanced + " " + r.Text()
}

// New is a reply with code and text, one line per line of text; the
// enhanced code is read from the start of the first line ("5.1.1 no such
// user"), as a server would send it.
func New(code int, text string) Reply {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, "\r")
	}
	return Reply{Code: code, Enhanced: parseEnhanced(lines[0]), Lines: lines}
}

// Temporary reports a 4xx reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx reply.
func (r Reply) Permanent() bool { return r.Code >= 500 }

// OK reports a 2xx or 3xx reply.
func (r Reply) OK() bool { return r.Code >= 200 && r.Code < 400 }

// String is the reply on one line, as Postfix logs it: every line keeps its
// "550-5.7.1" prefix, joined by spaces, so that a rule can see where lines
// were broken. A reply without a code is its lines joined by spaces.
func (r Reply) String() string {
	if r.Code == 0 {
		return strings.Join(r.Lines, " ")
	}
	return strings.Join(r.Wire(), " ")
}

// Wire is the reply's lines as a server sends them, without line ends:
// "550-5.7.1 first", "550 5.7.1 last". A reply without lines, or whose
// last line has no text, ends with its code alone.
func (r Reply) Wire() []string {
	if len(r.Lines) == 0 {
		return []string{fmt.Sprintf("%03d", r.Code)}
	}
	out := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		sep := "-"
		if i == len(r.Lines)-1 {
			if l == "" {
				// "354": a last line without text is its code.
				out[i] = fmt.Sprintf("%03d", r.Code)
				continue
			}
			sep = " "
		}
		out[i] = fmt.Sprintf("%03d%s%s", r.Code, sep, l)
	}
	return out
}

// Text is the reply's text without codes, lines joined by spaces.
func (r Reply) Text() string {
	var parts []string
	for _, l := range r.Lines {
		if r.Enhanced != "" {
			l = strings.TrimSpace(strings.TrimPrefix(l, r.Enhanced))
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

// MaxKept is how much of a reply's text is kept as the record of what a
// server said (Postfix's line_length_limit, 2048): an envelope keeps no
// more, and a notice or a log line made at once should not say more.
const MaxKept = 2048

// Clip returns r with at most n octets of text in its lines, as Postfix's
// smtp client keeps at most line_length_limit of a multi-line reply: the
// lines past that are left out, and the last one kept is cut at a
// character's start. A server may send 100 lines of 2,048 octets.
func (r Reply) Clip(n int) Reply {
	kept := 0
	for i, l := range r.Lines {
		if kept+len(l) <= n {
			kept += len(l)
			continue
		}
		k := n - kept
		for k > 0 && !utf8.RuneStart(l[k]) {
			k--
		}
		lines := append([]string(nil), r.Lines[:i]...)
		if k > 0 || i == 0 {
			lines = append(lines, l[:k])
		}
		r.Lines = lines
		break
	}
	return r
}

// maxLines bounds the lines of a reply that are kept. A server may send
// more (a 3,000-line 550 has been seen): the rest are read, checked and
// dropped, as Postfix's smtp client reads a reply to its last line and
// keeps line_length_limit of its text (smtp_chat_resp), so that the code
// is acted on. Refused, such a reply would defer the message for good.
// The caller bounds the reading in time (one deadline for the reply).
const maxLines = 100

// Add appends one line as read from the wire, without its line end
// ("550-5.7.1 text"), and reports whether more lines follow. Every line
// must carry the first line's code; lines past maxLines are checked, not
// kept. On an error r is unchanged. Every
// octet that is not printable (a control character, DEL, an octet that is
// not part of a valid UTF-8 character) becomes '?', as Postfix's smtp
// client censors a server's reply (smtp_chat_resp), so that no server can
// put a NUL, an escape sequence or text that is not UTF-8 into a log
// line, an envelope or a delivery status notification.
func (r *Reply) Add(line string) (more bool, err error) {
	line = printable(line)
	if len(line) < 3 {
		return false, fmt.Errorf("reply: malformed line %q", clip(line))
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil || code < 200 || code > 599 || line[0] == '+' || line[0] == '-' || (r.Code != 0 && code != r.Code) {
		return false, fmt.Errorf("reply: malformed line %q", clip(line))
	}
	text := ""
	if len(line) > 3 {
		switch line[3] {
		case '-':
			more = true
		case ' ':
		default:
			return false, fmt.Errorf("reply: malformed line %q", clip(line))
		}
		text = line[4:]
	}
	r.Code = code
	if len(r.Lines) < maxLines {
		r.Lines = append(r.Lines, text)
	}
	if len(r.Lines) == 1 {
		r.Enhanced = parseEnhanced(text)
	}
	return more, nil
}

// Parse reads a whole reply from its wire lines, without line ends. The
// last line must end the reply ("550 ...") and no line may follow it.
func Parse(lines []string) (Reply, error) {
	var r Reply
	if len(lines) == 0 {
		return r, fmt.Errorf("reply: no lines")
	}
	for i, l := range lines {
		more, err := r.Add(l)
		if err != nil {
			return Reply{}, err
		}
		if more != (i < len(lines)-1) {
			return Reply{}, fmt.Errorf("reply: line %d of %d says more lines follow: %v", i+1, len(lines), more)
		}
	}
	return r, nil
}

// ParseLine reads a reply written on one line, as a table or a filter
// writes one ("550 5.1.1 no such user"): a code, a space or hyphen, and
// text, which becomes the reply's one line. A Postfix-joined multi-line
// reply ("550-5.7.1 a 550 5.7.1 b") stays one line of text.
func ParseLine(s string) (Reply, error) {
	s = strings.TrimSpace(s)
	if len(s) < 3 {
		return Reply{}, fmt.Errorf("reply: no reply code in %q", clip(s))
	}
	code, err := strconv.Atoi(s[:3])
	if err != nil || code < 200 || code > 599 || s[0] == '+' || s[0] == '-' || (len(s) > 3 && s[3] != ' ' && s[3] != '-') {
		return Reply{}, fmt.Errorf("reply: no reply code in %q", clip(s))
	}
	text := ""
	if len(s) > 3 {
		text = strings.TrimSpace(s[4:])
	}
	return Reply{Code: code, Enhanced: parseEnhanced(text), Lines: []string{text}}, nil
}

// EnhancedCode splits an RFC 3463 status code ("5.7.1", or the start of a
// line "5.7.1 text") into its three numbers.
func EnhancedCode(s string) (c [3]int, ok bool) {
	e := parseEnhanced(s)
	if e == "" {
		return c, false
	}
	for i, p := range strings.SplitN(e, ".", 3) {
		c[i], _ = strconv.Atoi(p)
	}
	return c, true
}

// IsEnhanced reports whether s is an RFC 3463 status code and nothing
// else: a class of 2, 4 or 5, then a subject and a detail of one to three
// digits each (Postfix's dsn_valid()).
func IsEnhanced(s string) bool { return s != "" && parseEnhanced(s) == s }

// parseEnhanced returns the RFC 3463 code at the start of s, if any: a
// class of 2, 4 or 5, and a subject and detail of one to three digits.
func parseEnhanced(s string) string {
	f, _, _ := strings.Cut(s, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return ""
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return ""
			}
		}
	}
	return f
}

// printable returns s with every control character, DEL and octet outside
// a valid UTF-8 character replaced by '?' (Postfix's printable() with
// UTF-8 enabled).
func printable(s string) string {
	ok := utf8.ValidString(s)
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= ' ' && s[i] != 0x7f
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size <= 1 || c < ' ' || c == 0x7f {
			c, size = '?', max(size, 1)
		}
		b.WriteRune(c)
		i += size
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
