package postfixlog

import (
	"net/netip"
	"strings"
)

// readPath reads an address in angle brackets at the start of s, as
// Postfix (info_log_address_format = external, the default since 3.5) and
// amavis log it: an RFC 5321 path whose local part, when it holds anything
// but atoms and dots, is a quoted string with backslash escapes (RFC 5321
// section 4.1.2). It returns the address as logged, without the brackets,
// and what follows the closing bracket.
//
// The local part is text a client chose, so it is read by the grammar,
// never up to the first '>': `<"a>status=bounced ..."@gmail.com>` is one
// address. An unquoted local part with a special character (a log in
// Postfix's internal form, or a line made up to look like one) cannot be
// told from the fields after it, so such a line is not read at all.
func readPath(s string) (addr, rest string, ok bool) {
	if !strings.HasPrefix(s, "<") {
		return "", "", false
	}
	i := 1
	if i < len(s) && s[i] == '>' {
		return "", s[2:], true // the null path
	}
	// The local part: a quoted string or a dot-string.
	if i < len(s) && s[i] == '"' {
		i++
		for {
			if i >= len(s) {
				return "", "", false
			}
			c := s[i]
			if c == '\\' {
				if i+1 >= len(s) {
					return "", "", false
				}
				i += 2
				continue
			}
			i++
			if c == '"' {
				break
			}
		}
		if i >= len(s) || (s[i] != '@' && s[i] != '>') {
			return "", "", false
		}
	} else {
		start := i
		for i < len(s) && isAtext(s[i]) {
			i++
		}
		if i == start || i >= len(s) || (s[i] != '@' && s[i] != '>') {
			return "", "", false
		}
	}
	// The domain: a name or an address literal.
	if s[i] == '@' {
		i++
		if i < len(s) && s[i] == '[' {
			end := strings.IndexByte(s[i:], ']')
			if end < 0 || strings.ContainsAny(s[i+1:i+end], "[<>\" ") {
				return "", "", false
			}
			i += end + 1
		} else {
			start := i
			for i < len(s) && isDomainChar(s[i]) {
				i++
			}
			if i == start {
				return "", "", false
			}
		}
	}
	if i >= len(s) || s[i] != '>' {
		return "", "", false
	}
	return s[1:i], s[i+1:], true
}

// isAtext reports whether c may appear in an unquoted local part: RFC 5322
// atext, the dot, and (RFC 6531) any non-ASCII byte.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// isDomainChar reports whether c may appear in a domain name as Postfix
// accepts one (letters, digits, '-', '.', '_', and UTF-8).
func isDomainChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return c == '-' || c == '.' || c == '_'
}

// nameAddr splits "name[1.2.3.4]" or "name[1.2.3.4]:25". The address may
// be "unknown" or, for IPv6, carry an "IPv6:" prefix.
func nameAddr(s string) (name, ip string, ok bool) {
	open := strings.IndexByte(s, '[')
	end := strings.LastIndexByte(s, ']')
	if open < 0 || end < open {
		return s, "", s != ""
	}
	name = s[:open]
	ip = s[open+1 : end]
	if a, ok := parseIP(ip); ok {
		ip = a
	}
	return name, ip, true
}

// clientAddr splits smtpd's "name[1.2.3.4]": a name without spaces or
// brackets, and an IP address in brackets at the end, or followed by
// ":PORT" when smtpd_client_port_logging = yes ("name[1.2.3.4]:51234";
// the port is digits, or "unknown" when smtpd does not know it).
func clientAddr(s string) (name, ip string, ok bool) {
	if i := strings.LastIndex(s, "]:"); i >= 0 {
		if port := s[i+2:]; !isDigits(port) && port != "unknown" {
			return "", "", false
		}
		s = s[:i+1]
	}
	open := strings.IndexByte(s, '[')
	if open < 0 || !strings.HasSuffix(s, "]") || strings.ContainsAny(s[:open], "[] ,") {
		return "", "", false
	}
	if ip, ok = parseIP(s[open+1 : len(s)-1]); !ok {
		return "", "", false
	}
	return s[:open], ip, true
}

// parseIP accepts "1.2.3.4", "2001:db8::1" and "IPv6:2001:db8::1".
func parseIP(s string) (string, bool) {
	a, err := netip.ParseAddr(strings.TrimPrefix(s, "IPv6:"))
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}
