package smtpd

import (
	"encoding/base64"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// isBase64 reports whether a SASL response decodes (RFC 4954 section 4).
func isBase64(s string) bool {
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// validHelo reports whether a HELO/EHLO argument is a domain (RFC 5321
// section 4.1.2: labels of at most 63 octets, at most 255 in all, letters,
// digits, hyphens inside, and underscores as Postfix allows; U-labels as
// RFC 6531 allows) or an address literal ([192.0.2.1], [IPv6:2001:db8::1]).
func validHelo(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		lit := s[1 : len(s)-1]
		if v6, ok := cutPrefixFold(lit, "IPv6:"); ok {
			a, err := netip.ParseAddr(v6)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		a, err := netip.ParseAddr(lit)
		return err == nil && a.Is4()
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || uLabelRune(r)) {
				return false
			}
		}
	}
	return true
}

// uLabelRune reports whether r may be in a U-label: a letter, a mark or a
// digit, or what IDNA allows in context (RFC 5892 appendix A): the
// joiners and the CONTEXTO punctuation of real names (col·legi.cat's
// middle dot, Greek's keraia, Hebrew's geresh and gershayim, the
// katakana middle dot). Never a C1 control (U+009B is a terminal's CSI),
// a line or paragraph separator, or another format or space character,
// which would go into the mail log and the Received header of every
// message the client sends.
func uLabelRune(r rune) bool {
	switch r {
	case 0x200c, 0x200d, 0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb:
		return true
	}
	return r >= 0x80 && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r))
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if !hasPrefixFold(s, prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// printable keeps a client's word short and printable in a reply.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// unqualified reports whether pathRefusal's reply refuses an address
// for want of a domain alone.
func unqualified(refusal string) bool { return strings.HasPrefix(refusal, "504 ") }

// qualifySender gives an unqualified MAIL FROM:<root> the domain of
// Options.Myorigin, as Postfix's append_at_myorigin does, and returns
// the line for go-smtp with the sender as the client gave it; the line as
// it is, and "", for any other MAIL.
func (c *commandConn) qualifySender(arg string, line []byte) ([]byte, string) {
	rest := strings.TrimSpace(arg)[len("FROM:"):]
	if c.srv.opts.Myorigin == "" || !unqualified(pathRefusal(rest, false)) {
		return line, ""
	}
	path, params, _ := splitPath(rest)
	local := strings.TrimSuffix(strings.TrimPrefix(path, "<"), ">")
	if !strings.HasPrefix(params, " ") && params != "" {
		params = " " + params
	}
	// A source route goes, as Postfix's smtpd strips it before anything
	// sees the address (pathRefusal names the address without it too).
	if route, after, ok := strings.Cut(local, ":"); ok && strings.HasPrefix(route, "@") {
		local = after
	}
	return []byte("MAIL FROM:<" + local + "@" + c.srv.opts.Myorigin + ">" + params + "\r\n"), local
}

// pathRefusal reads what follows "FROM:" or "TO:" as go-smtp's parser does
// and returns Postfix's reply for a path that parser refuses, which it
// would refuse in its own words ("501 5.5.2 Was expecting MAIL arg syntax
// of FROM:<address>", naming a syntax the client had followed): "501 5.1.7
// Bad sender address syntax" (5.1.3 for a recipient), or for an address
// without a domain, which relaykeeper cannot qualify, the reply of
// Postfix's reject_non_fqdn_sender and reject_non_fqdn_recipient. "" when
// go-smtp reads the path; a bare Postmaster recipient is qualified later.
func pathRefusal(rest string, rcpt bool) string {
	bad, what := "501 5.1.7 Bad sender address syntax", "Sender"
	if rcpt {
		bad, what = "501 5.1.3 Bad recipient address syntax", "Recipient"
	}
	s := strings.TrimSpace(rest)
	if !rcpt && strings.HasPrefix(s, "<>") {
		return ""
	}
	p, bracketed := strings.CutPrefix(s, "<")
	if strings.HasPrefix(p, "@") {
		// A source route, up to its colon.
		_, after, ok := strings.Cut(p, ":")
		if !ok {
			return bad
		}
		p = after
	}
	local, p, ok := localPart(p)
	if !ok || local == "" || local == `""` {
		// go-smtp takes the quotes off, and refuses what is left empty.
		return bad
	}
	if !strings.HasPrefix(p, "@") {
		if bracketed {
			var closed bool
			if p, closed = strings.CutPrefix(p, ">"); !closed {
				return bad
			}
		}
		if p != "" && p[0] != ' ' {
			return bad
		}
		if rcpt && strings.EqualFold(local, "postmaster") {
			return ""
		}
		return "504 5.5.2 <" + replyText(local) + ">: " + what + " address rejected: need fully-qualified address"
	}
	domain := p[1:]
	n := strings.IndexAny(domain, " \t>")
	if n < 0 {
		n = len(domain)
	}
	if n == 0 || bracketed && !strings.HasPrefix(domain[n:], ">") {
		return bad
	}
	if _, err := netip.ParseAddr(domain[:n]); err == nil || strings.Trim(domain[:n], "0123456789.") == "" {
		// An IP address without the brackets of an address literal
		// (RFC 5321 section 4.1.3), or another all-numeric name,
		// which Postfix refuses as well (resolve_numeric_domain = no,
		// valid_hostname): no DNS has it as a name.
		return bad
	}
	return ""
}

// localPart reads a local part as go-smtp does: a quoted string, kept with
// its quotes, or a dot-string up to the '@' or the end; ok is false where
// go-smtp's parser fails. A dot-string also ends, with ok, at a '>' or a
// space: there the address has no domain.
func localPart(s string) (local, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) {
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return s[:i+1], s[i+1:], true
			}
		}
		return "", "", false
	}
	i := strings.IndexAny(s, "@()<>[]:;\\,\" \t")
	if i < 0 {
		return s, "", true
	}
	if s[i] == '@' || s[i] == '>' || s[i] == ' ' {
		return s[:i], s[i:], true
	}
	return "", "", false
}

// replyText is s with control characters and non-ASCII octets as '?', for
// a reply line.
func replyText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}

// asciiReply is s with each octet outside US-ASCII as a space, as Postfix
// 3.7 words a header_checks reply to a client that did not declare
// SMTPUTF8: reply text is US-ASCII (RFC 5321 section 4.2; RFC 6531
// section 3.7.4 allows UTF-8 only after SMTPUTF8).
func asciiReply(s string) string {
	if ascii(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 0x80 {
			b[i] = ' '
		}
	}
	return string(b)
}

// ascii reports whether s is 7-bit (an address that needs no SMTPUTF8).
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
