package table

import (
	"net/netip"
	"strings"
)

// NullSenderKey is the key looked up for the null sender <>, Postfix's
// default smtpd_null_access_lookup_key.
const NullSenderKey = "<>"

// find looks key up once. A full lookup is the first, whole-string lookup
// of a search; partial lookups (parent domains, user@, network prefixes)
// are made only in tables with exact keys, as Postfix does: pattern tables
// see the whole string and nothing else.
func (c *contents) find(key string, full bool) (string, bool) {
	switch c.kind {
	case kindStatic:
		return c.static, true
	case kindFixed:
		if key == "" {
			return "", false
		}
		e, ok := c.fixed[strings.ToLower(key)]
		return e.value, ok
	case kindRegexp:
		if !full {
			return "", false
		}
		return c.re.lookup(key)
	case kindCIDR:
		if !full {
			return "", false
		}
		a, ok := parseLookupAddr(key)
		if !ok {
			return "", false
		}
		return c.cidr.lookup(a)
	}
	return "", false
}

// Lookup looks key up as it is: exactly (case-folded) in hash-like tables,
// against every pattern in regexp and pcre tables, as an address in cidr
// tables. It is postmap -q.
func (t *Table) Lookup(key string) (string, bool) {
	return t.cur.Load().find(key, true)
}

// Which parent-domain keys a domain search tries.
const (
	dotParents   = 1 << iota // ".example.com" matches sub.example.com
	plainParents             // "example.com" matches sub.example.com
)

// findDomain looks up domain, then its parent domains up to the top-level
// domain. For each parent P it tries "P" before ".P" when both styles are
// on. Numerical addresses have no parents.
func (c *contents) findDomain(domain string, full bool, style int) (string, bool) {
	if v, ok := c.find(domain, full); ok {
		return v, true
	}
	if _, numeric := parseLookupAddr(domain); numeric || strings.HasPrefix(domain, "[") {
		return "", false
	}
	rest := domain
	for {
		i := strings.IndexByte(rest, '.')
		if i < 0 || i+1 >= len(rest) {
			return "", false
		}
		parent := rest[i+1:]
		if style&plainParents != 0 {
			if v, ok := c.find(parent, false); ok {
				return v, true
			}
		}
		if style&dotParents != 0 {
			if v, ok := c.find("."+parent, false); ok {
				return v, true
			}
		}
		rest = parent
	}
}

// LookupAddress looks up a mail address in the order of access(5), for
// check_sender_access and check_recipient_access:
//
//  1. user@domain
//  2. domain, then each parent domain P as "P" and then ".P"
//     (sub.example.com tries sub.example.com, example.com, .example.com,
//     com, .com)
//  3. user@
//
// It is LookupAddressExt with no recipient delimiter.
// The null address (empty or <>) looks up NullSenderKey only. Keys match
// regardless of case. Regexp and pcre tables see the whole address only;
// cidr tables never match an address. Angle brackets around addr are
// removed, and so are a source route and a trailing dot after the domain,
// as Postfix looks the address up once trivial-rewrite(8) has resolved it;
// a localpart that needs quoting must be given quoted, as the table's keys
// are.
func (t *Table) LookupAddress(addr string) (string, bool) {
	return t.LookupAddressExt(addr, "")
}

// LookupAddressExt is LookupAddress with Postfix's recipient_delimiter:
// when the localpart holds one of the characters of delims, the order
// becomes that of access(5)'s "extension address lookup", user+foo@domain,
// user@domain, domain (and its parents), user+foo@, user@. The address
// without its extension is a partial key, which pattern tables do not see.
func (t *Table) LookupAddressExt(addr, delims string) (string, bool) {
	c := t.cur.Load()
	addr = trimSpace(addr)
	if len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		addr = addr[1 : len(addr)-1]
	}
	if addr == "" {
		return c.find(NullSenderKey, true)
	}
	if c.kind == kindCIDR {
		return "", false
	}
	addr = resolvedForm(addr)
	if v, ok := c.find(addr, true); ok {
		return v, true
	}
	bare := StripExtension(addr, delims)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		// Postfix would have qualified the address with $myorigin.
		if v, ok := c.find(addr+"@", false); ok || bare == "" {
			return v, ok
		}
		return c.find(bare+"@", false)
	}
	if bare != "" {
		if v, ok := c.find(bare, false); ok {
			return v, true
		}
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if domain != "" {
		if v, ok := c.findDomain(domain, false, plainParents|dotParents); ok {
			return v, true
		}
	}
	if at+1 < len(addr) { // "user@" itself was the full lookup
		if v, ok := c.find(local+"@", false); ok {
			return v, true
		}
	}
	if bare != "" {
		return c.find(bare[:strings.LastIndexByte(bare, '@')+1], false)
	}
	return "", false
}

// StripExtension returns addr without its localpart's extension, or "" if
// it has none, as Postfix's split_addr(): the localpart is cut at the
// first character of delims (Postfix's recipient_delimiter), but not when
// that leaves it empty, nor for postmaster, mailer-daemon and
// double-bounce, nor (with '-' among the delimiters) for owner-* and
// *-request.
func StripExtension(addr, delims string) string {
	if delims == "" {
		return ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		at = len(addr)
	}
	local := addr[:at]
	switch l := strings.ToLower(local); {
	case l == "postmaster" || l == "mailer-daemon" || l == "double-bounce":
		return ""
	case strings.IndexByte(delims, '-') >= 0 &&
		(strings.HasPrefix(l, "owner-") || len(l) > 8 && strings.HasSuffix(l, "-request")):
		return ""
	}
	i := strings.IndexAny(local, delims)
	if i <= 0 {
		return ""
	}
	return local[:i] + addr[at:]
}

// ResolvedForm is resolvedForm for callers outside: "" stays "".
func ResolvedForm(addr string) string {
	if addr == "" {
		return ""
	}
	return resolvedForm(addr)
}

// resolvedForm is addr as Postfix's smtpd looks it up after
// trivial-rewrite(8) resolved it: without an RFC 821 source route
// ("@a,@b:user@c" is user@c) and without a trailing dot after the domain
// ("user@example.com." is user@example.com). Looking up the address as
// given would let a client step past a user@domain entry by writing it one
// of those ways, while the mail still reaches user@domain.
func resolvedForm(addr string) string {
	if addr[0] == '@' {
		if i := strings.IndexByte(addr, ':'); i >= 0 {
			addr = addr[i+1:]
		}
	}
	if at := strings.LastIndexByte(addr, '@'); at >= 0 && at+2 < len(addr) {
		addr = strings.TrimSuffix(addr, ".")
	}
	return addr
}

// LookupClient looks up an SMTP client in the order of access(5), for
// check_client_access:
//
//  1. the hostname and its parent domains, as LookupAddress does for a
//     domain, when hostname is not empty (pass "" for an unknown name;
//     Postfix itself looks up the literal name "unknown");
//  2. the address: 192.0.2.10, then 192.0.2, 192.0, 192; an IPv6 address
//     in its canonical text form, then that text cut back at each ':'
//     from the right (2001:db8::1, 2001:db8:, 2001:db8, 2001), which as
//     access(5) warns does not try every network.
//
// An IPv4-mapped IPv6 address is looked up as IPv4, as smtpd(8) does.
// Regexp and pcre tables see the hostname, then the address text; cidr
// tables match the address.
func (t *Table) LookupClient(ip netip.Addr, hostname string) (string, bool) {
	c := t.cur.Load()
	if c.kind == kindStatic {
		return c.static, true
	}
	hostname = strings.TrimSuffix(trimSpace(hostname), ".")
	if hostname != "" && c.kind != kindCIDR {
		if v, ok := c.findDomain(hostname, true, plainParents|dotParents); ok {
			return v, true
		}
	}
	if !ip.IsValid() {
		return "", false
	}
	ip = ip.Unmap().WithZone("")
	if c.kind == kindCIDR {
		return c.cidr.lookup(ip)
	}
	s := ip.String()
	if v, ok := c.find(s, true); ok {
		return v, true
	}
	delim := byte('.')
	if ip.Is6() {
		delim = ':'
	}
	for {
		i := strings.LastIndexByte(s, delim)
		if i <= 0 {
			return "", false
		}
		s = s[:i]
		if v, ok := c.find(s, false); ok {
			return v, true
		}
	}
}

// DomainMatch tunes LookupDomainWith.
type DomainMatch struct {
	// ParentMatchesSubdomains makes a key "example.com" match the
	// subdomains of example.com, and ".example.com" keys unused, as in
	// Postfix when transport_maps is listed in
	// parent_domain_matches_subdomains. It is off by default, as in
	// Postfix, and then only ".example.com" matches subdomains.
	ParentMatchesSubdomains bool
}

// LookupDomain is LookupDomainWith(domain, DomainMatch{}): the domain
// search of transport(5).
func (t *Table) LookupDomain(domain string) (string, bool) {
	return t.LookupDomainWith(domain, DomainMatch{})
}

// LookupDomainWith looks up a domain in the order of transport(5):
//
//  1. domain
//  2. each parent P as ".P" (sub.example.com tries .example.com, .com), or
//     as "P" when m.ParentMatchesSubdomains
//  3. the wildcard "*"
//
// Regexp, pcre and cidr tables see the domain only.
func (t *Table) LookupDomainWith(domain string, m DomainMatch) (string, bool) {
	c := t.cur.Load()
	domain = strings.TrimSuffix(trimSpace(domain), ".")
	style := dotParents
	if m.ParentMatchesSubdomains {
		style = plainParents
	}
	if domain != "" {
		if v, ok := c.findDomain(domain, true, style); ok {
			return v, true
		}
	}
	return c.find("*", false)
}

// Which key LookupMailAddr matched.
const (
	MatchFull   = iota // the address as given
	MatchBare          // the address without its extension
	MatchDomain        // "@domain"
)

// LookupMailAddr looks an address up in the order of Postfix's
// mail_addr_find, for canonical(5), generic(5) and relay_recipient_maps:
// user+ext@domain, then user@domain (with delims as recipient_delimiter),
// then @domain. The last two are partial keys, which pattern tables do
// not see. There is no "user" lookup: relaykeeper has no local domains.
// match says which key was found.
func (t *Table) LookupMailAddr(addr, delims string) (value string, match int, ok bool) {
	c := t.cur.Load()
	if v, ok := c.find(addr, true); ok {
		return v, MatchFull, true
	}
	if bare := StripExtension(addr, delims); bare != "" {
		if v, ok := c.find(bare, false); ok {
			return v, MatchBare, true
		}
	}
	if at := strings.LastIndexByte(addr, '@'); at >= 0 && at+1 < len(addr) {
		if v, ok := c.find(addr[at:], false); ok {
			return v, MatchDomain, true
		}
	}
	return "", 0, false
}
