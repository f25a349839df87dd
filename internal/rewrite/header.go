package rewrite

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
)

// Postfix's header address classes (header_opts.c): which header fields
// hold sender addresses and which recipient addresses. Reply-To and
// Mail-Followup-To are senders there (HDR_OPT_SENDER), Resent-Reply-To a
// recipient.
var headerClass = map[string]byte{
	"from": 's', "sender": 's', "resent-from": 's', "resent-sender": 's', "return-path": 's',
	"errors-to": 's', "return-receipt-to": 's', "disposition-notification-to": 's',
	"reply-to": 's', "mail-followup-to": 's',
	"to": 'r', "cc": 'r', "bcc": 'r', "resent-to": 'r', "resent-cc": 'r', "resent-bcc": 'r',
	"resent-reply-to": 'r', "apparently-to": 'r',
}

// maxField bounds the header field held to be rewritten: Postfix's
// header_size_limit. A longer field, and what follows it, passes
// unchanged.
const maxField = 100 << 10

// HeaderWriter rewrites the addresses in a message's header section on
// its way to W: the fields of Postfix's header_sender and
// header_recipient classes, mapped as the envelope's are. Each field is
// held until it is whole (the next field's line, the empty line, or
// Close), rewritten and written on: only the field being read is held,
// never the whole section. The body passes straight through. A field
// whose addresses do not parse, or that no table changes, is written as
// it came, byte for byte; in one that changes, each address is replaced
// where it stands, so the display names and the folding stay.
type HeaderWriter struct {
	W io.Writer
	C *Canonical
	// GenericOnly applies smtp_generic_maps alone: for a client whose
	// header the canonical maps leave as it is.
	GenericOnly bool
	through     bool
	// head holds, from start, the field being read: its whole lines up
	// to scanned, then the start of a line cut off at the end of a
	// write. What is before start has been written on; it goes at the
	// next write, so that each octet is moved once.
	head           []byte
	start, scanned int
	// fields: a field has begun, so a line starting with a blank is
	// its continuation.
	fields bool
}

// Write holds the field being read, and writes each field on as the next
// line shows it whole; then passes the body on.
func (h *HeaderWriter) Write(p []byte) (int, error) {
	if h.through {
		return h.W.Write(p)
	}
	if h.start > 0 {
		h.head = h.head[:copy(h.head, h.head[h.start:])]
		h.scanned -= h.start
		h.start = 0
	}
	h.head = append(h.head, p...)
	for {
		nl := bytes.IndexByte(h.head[h.scanned:], '\n')
		if nl < 0 {
			break
		}
		line := h.head[h.scanned : h.scanned+nl+1]
		if h.fields && blankStart(line) {
			h.scanned += len(line)
			continue
		}
		// The line begins something new: the field before it is whole.
		if err := h.emit(); err != nil {
			return 0, err
		}
		if string(line) == "\r\n" || string(line) == "\n" || !inHeader(line, !h.fields) {
			return len(p), h.pass()
		}
		h.fields = true
		h.scanned += len(line)
	}
	if rest := h.head[h.scanned:]; h.scanned > h.start && len(rest) > 0 && !blankStart(rest) {
		// A line not yet whole that is no continuation: the field
		// before it is whole.
		if err := h.emit(); err != nil {
			return 0, err
		}
	}
	if len(h.head)-h.start > maxField {
		return len(p), h.pass() // too long to hold: as it is
	}
	return len(p), nil
}

func blankStart(line []byte) bool { return line[0] == ' ' || line[0] == '\t' }

// emit writes the field held (h.head[h.start:h.scanned]), rewritten.
func (h *HeaderWriter) emit() error {
	field := h.head[h.start:h.scanned]
	if len(field) == 0 {
		return nil
	}
	if f, ok := h.field(field); ok {
		field = f
	}
	h.start = h.scanned
	_, err := h.W.Write(field)
	return err
}

// pass writes what is held as it is, and everything after it.
func (h *HeaderWriter) pass() error {
	h.through = true
	_, err := h.W.Write(h.head[h.start:])
	h.head = nil
	return err
}

// Close writes a header section that had no body after it: its last
// line, unended, is the field's continuation, a field of its own, or body.
func (h *HeaderWriter) Close() error {
	if h.through {
		return nil
	}
	if rest := h.head[h.scanned:]; len(rest) > 0 && (!h.fields || !blankStart(rest)) {
		if err := h.emit(); err != nil {
			return err
		}
		if !inHeader(rest, !h.fields) {
			return h.pass()
		}
	}
	h.scanned = len(h.head)
	if err := h.emit(); err != nil {
		return err
	}
	return h.pass()
}

// inHeader reports whether line belongs to the header section: a field
// ("Name:", the name printable ASCII without a colon, perhaps followed by
// blanks, as Postfix's is_header), or, after the first line, a
// continuation starting with a blank.
func inHeader(line []byte, first bool) bool {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return !first
	}
	name := true
	for i, b := range line {
		switch {
		case b == ':':
			return i > 0
		case b == ' ' || b == '\t':
			if i == 0 {
				return false
			}
			name = false
		case !name || b <= ' ' || b >= 0x7f:
			return false
		}
	}
	return false
}

// field rewrites one field, or reports false if it stays as it is.
func (h *HeaderWriter) field(raw []byte) ([]byte, bool) {
	colon := bytes.IndexByte(raw, ':')
	if colon <= 0 {
		return nil, false
	}
	class := headerClass[strings.ToLower(string(bytes.TrimRight(raw[:colon], " \t")))]
	if class == 0 {
		return nil, false
	}
	value := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(raw[colon+1:]))
	list, err := addrParser.ParseList(parseable(value))
	if err != nil {
		return nil, false
	}
	text := string(raw)
	at := addrIndex(text, colon+1)
	// The field is built anew as it is walked: one pass, however many
	// addresses it holds.
	var out strings.Builder
	done := 0         // text[:done] is in out
	from := colon + 1 // addresses come in order: each is looked for after the last
	for _, a := range list {
		to := h.headerMap(a.Address, class)
		i := at.next(a.Address, from)
		if i < 0 {
			continue // written some other way (quoted, encoded): left alone
		}
		from = i + len(a.Address)
		if to == a.Address {
			continue
		}
		out.WriteString(text[done:i])
		out.WriteString(to)
		done = from
	}
	if done == 0 {
		return nil, false
	}
	out.WriteString(text[done:])
	if longestLine(text) <= maxLine {
		return fold(out.String()), true
	}
	return []byte(out.String()), true
}

// maxLine is RFC 5322's limit on a line, CRLF excluded.
const maxLine = 998

// longestLine is the length of s's longest line, CRLF excluded.
func longestLine(s string) int {
	n := 0
	for line := range strings.Lines(s) {
		n = max(n, len(strings.TrimRight(line, "\r\n")))
	}
	return n
}

// fold folds the lines of a field that longer addresses took past
// maxLine, before a blank as near the limit as there is one, as Postfix's
// cleanup folds the header fields it rewrote: the field unfolds to the
// same text.
func fold(s string) []byte {
	var b []byte
	for line := range strings.Lines(s) {
		body := strings.TrimRight(line, "\r\n")
		for len(body) > maxLine {
			k := strings.LastIndexAny(body[1:maxLine+1], " \t") + 1
			if k <= 0 {
				break // no blank to fold at: as it is
			}
			b = append(append(b, body[:k]...), "\r\n"...)
			body = body[k:]
		}
		b = append(append(b, body...), line[len(strings.TrimRight(line, "\r\n")):]...)
	}
	return b
}

// addrParser reads the addresses of a field. Only the addresses matter,
// never the display names, so an encoded word in any charset
// (ISO-2022-JP, windows-1252) is taken as it is rather than failing the
// whole field, as the standard library's decoder, which knows only
// UTF-8, ISO-8859-1 and US-ASCII, would.
var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// parseable is a field's value as addrParser can read it, with the same
// addresses: its comments are blanks (the parser refuses one before a
// bare address, "(c) user@example.com"), and bytes that are not UTF-8
// (a raw Latin-1 display name) are '?'.
func parseable(v string) string {
	b := []byte(v)
	for i := 0; i < len(b); {
		switch b[i] {
		case '"':
			i = skipQuoted(v, i, '"', '"')
		case '(':
			j := skipQuoted(v, i, '(', ')')
			for k := i; k < j; k++ {
				b[k] = ' '
			}
			i = j
		default:
			i++
		}
	}
	return strings.ToValidUTF8(string(b), "?")
}

// addrWords are the places in a field where an address may stand whole
// (not inside a longer word, a quoted string such as a display name, or
// a comment), by their lower-cased text: the words between the
// characters that may come before or after an address.
type addrWords map[string][]int

// addrIndex finds the words of s from start on, in one pass.
func addrIndex(s string, start int) addrWords {
	const before, after = "< \t,:\n", "> \t,;(\r\n"
	w := addrWords{}
	for i := start; i < len(s); {
		switch {
		case s[i] == '"':
			i = skipQuoted(s, i, '"', '"')
			continue
		case s[i] == '(':
			i = skipQuoted(s, i, '(', ')')
			continue
		case strings.IndexByte(before+after, s[i]) >= 0:
			i++
			continue
		}
		j := i
		for j < len(s) && strings.IndexByte(before+after+`"`, s[j]) < 0 {
			j++
		}
		if (i == 0 || strings.IndexByte(before, s[i-1]) >= 0) && (j == len(s) || strings.IndexByte(after, s[j]) >= 0) {
			k := strings.ToLower(s[i:j])
			w[k] = append(w[k], i)
		}
		i = j
	}
	return w
}

// skipQuoted is the offset after the quoted string or the comment that
// starts at s[i] (open), with its backslash escapes and, for a comment,
// the comments nested in it; len(s) if it does not end.
func skipQuoted(s string, i int, open, closing byte) int {
	depth := 1
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == closing && depth == 1:
			return i + 1
		case c == closing:
			depth--
		case c == open:
			depth++
		}
	}
	return len(s)
}

// next is where addr stands first at or after from, ignoring case; -1 if
// nowhere.
func (w addrWords) next(addr string, from int) int {
	at := w[strings.ToLower(addr)]
	if k, _ := slices.BinarySearch(at, from); k < len(at) {
		return at[k]
	}
	return -1
}
