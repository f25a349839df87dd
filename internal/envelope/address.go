// Package envelope parses and normalises envelope addresses (RFC 5321
// Mailbox), and recognises the address forms that open-relay probes use to
// smuggle a foreign destination past a relay check. It is a leaf: no network,
// no files.
package envelope

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Address is a parsed envelope address.
type Address struct {
	// Local is the local part as given, unquoted if it was quoted.
	Local string
	// Domain is lower-cased; for an address literal it keeps its brackets.
	Domain string
	// Quoted reports a quoted local part ("a b"@example.com).
	Quoted bool
	// Routed reports an RFC 821 source route (@a,@b:user@c) that was
	// stripped; Domain is then the final domain.
	Routed bool
}

// String is the address as it is sent on: local@domain.
func (a Address) String() string {
	if a.Local == "" && a.Domain == "" {
		return ""
	}
	l := a.Local
	if a.Quoted || needsQuote(l) {
		l = quote(l)
	}
	return l + "@" + a.Domain
}

// IsLiteral reports an address literal domain such as [192.0.2.1].
func (a Address) IsLiteral() bool { return strings.HasPrefix(a.Domain, "[") }

// Indirect reports local parts that name another destination inside this
// one: the percent hack (user%other@relay), bang paths (other!user@relay),
// an @ inside a quoted local part ("user@other"@relay) and source routes.
// A relay must never treat such an address as addressed to the domain after
// the last @ alone (Postfix rejects them in reject_unauth_destination unless
// the domain is local).
func (a Address) Indirect() bool {
	return a.Routed || strings.ContainsAny(a.Local, "%!@")
}

// Errors from Parse.
var (
	ErrEmpty  = errors.New("empty address")
	ErrSyntax = errors.New("bad address syntax")
)

// maxLen bounds a path (RFC 5321 section 4.5.3.1.3: 256 octets).
const maxLen = 256

// Parse reads an address as given in MAIL FROM or RCPT TO, without the angle
// brackets (go-smtp strips them). The null sender is the empty string and is
// not accepted here; callers handle it before.
func Parse(s string) (Address, error) {
	if s == "" {
		return Address{}, ErrEmpty
	}
	if len(s) > maxLen {
		return Address{}, fmt.Errorf("%w: longer than %d octets", ErrSyntax, maxLen)
	}
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%w: not UTF-8", ErrSyntax)
	}
	var a Address
	// Source route: @host1,@host2:user@domain (RFC 5321 section 4.1.2
	// and appendix C: accepted, ignored, but noted).
	if strings.HasPrefix(s, "@") {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Address{}, fmt.Errorf("%w: source route without ':'", ErrSyntax)
		}
		s = s[i+1:]
		a.Routed = true
	}
	var local, domain string
	if strings.HasPrefix(s, `"`) {
		end := closingQuote(s)
		if end < 0 {
			return Address{}, fmt.Errorf("%w: unterminated quoted local part", ErrSyntax)
		}
		q := s[1:end]
		rest := s[end+1:]
		if !strings.HasPrefix(rest, "@") {
			return Address{}, fmt.Errorf("%w: no domain", ErrSyntax)
		}
		local = unquote(q)
		domain = rest[1:]
		a.Quoted = true
	} else {
		i := strings.LastIndexByte(s, '@')
		if i < 0 {
			return Address{}, fmt.Errorf("%w: no domain", ErrSyntax)
		}
		local, domain = s[:i], s[i+1:]
		if local == "" {
			return Address{}, fmt.Errorf("%w: empty local part", ErrSyntax)
		}
		for _, c := range local {
			// An unquoted @ before the last one (a@b@c) is refused:
			// which domain is meant would be anyone's guess.
			if c <= ' ' || c == 0x7f || strings.ContainsRune(`()<>[]\,;:"@`, c) {
				return Address{}, fmt.Errorf("%w: %q in local part", ErrSyntax, c)
			}
		}
	}
	if len(local) > 64*4 {
		return Address{}, fmt.Errorf("%w: local part too long", ErrSyntax)
	}
	d, err := parseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	a.Local, a.Domain = local, d
	return a, nil
}

// ParseUnquoted reads an address whose local part has already been
// unquoted (go-smtp strips the quotes of "john doe"@example.com): the
// domain is what follows the last @, and a local part that needs quoting
// is marked Quoted, so that String quotes it again.
func ParseUnquoted(s string) (Address, error) {
	if strings.HasPrefix(s, "@") || strings.HasPrefix(s, `"`) {
		return Parse(s)
	}
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || len(s) > maxLen || !utf8.ValidString(s) {
		return Parse(s)
	}
	local := s[:i]
	if !needsQuote(local) {
		return Parse(s)
	}
	for _, c := range local {
		if c < ' ' || c == 0x7f {
			return Address{}, fmt.Errorf("%w: control character in local part", ErrSyntax)
		}
	}
	d, err := parseDomain(s[i+1:])
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: d, Quoted: true}, nil
}

func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func unquote(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func needsQuote(l string) bool {
	if l == "" || strings.HasPrefix(l, ".") || strings.HasSuffix(l, ".") || strings.Contains(l, "..") {
		return true
	}
	for _, c := range l {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(`()<>[]\,;:"@`, c) {
			return true
		}
	}
	return false
}

func quote(l string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(l) + `"`
}

// parseDomain checks a domain or address literal and lower-cases it.
func parseDomain(d string) (string, error) {
	if d == "" {
		return "", fmt.Errorf("%w: empty domain", ErrSyntax)
	}
	if strings.HasPrefix(d, "[") {
		if !strings.HasSuffix(d, "]") {
			return "", fmt.Errorf("%w: unterminated address literal", ErrSyntax)
		}
		lit := d[1 : len(d)-1]
		lit = strings.TrimPrefix(strings.TrimPrefix(lit, "IPv6:"), "ipv6:")
		ip, err := netip.ParseAddr(lit)
		if err != nil {
			return "", fmt.Errorf("%w: bad address literal %q", ErrSyntax, d)
		}
		if ip.Is6() && !ip.Is4In6() {
			return "[IPv6:" + ip.String() + "]", nil
		}
		return "[" + ip.Unmap().String() + "]", nil
	}
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if len(d) > 255 {
		return "", fmt.Errorf("%w: domain too long", ErrSyntax)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%w: bad domain %q", ErrSyntax, d)
		}
		if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("%w: bad domain %q", ErrSyntax, d)
		}
		for _, c := range label {
			// Letters, digits, hyphens; UTF-8 for SMTPUTF8 (U-labels);
			// underscores, which DNS names may have and Postfix takes
			// (mail_gw.example.com), as the HELO check does.
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 0x80) {
				return "", fmt.Errorf("%w: %q in domain", ErrSyntax, c)
			}
		}
	}
	return d, nil
}

// InDomains reports whether domain is one of domains or a subdomain of one
// written with a leading dot (".example.com"), as Postfix's relay_domains
// matches with parent_domain_matches_subdomains off for ".x" entries and on
// for plain ones. Matching is on whole labels: "evilexample.com" is not in
// "example.com".
func InDomains(domain string, domains []string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if d == "" {
			continue
		}
		if strings.HasPrefix(d, ".") {
			if strings.HasSuffix(domain, d) {
				return true
			}
			continue
		}
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return true
		}
	}
	return false
}
