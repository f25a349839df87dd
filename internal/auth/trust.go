package auth

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// trustRule is one "server none ADDRESS KEYWORD" line.
type trustRule struct {
	prefix  netip.Prefix
	keyword string
	line    int
}

func (s *Secrets) parseTrust(pattern, keyword string, n int) error {
	p, err := parseAddressPattern(pattern)
	if err != nil {
		return err
	}
	for _, t := range s.trust {
		if t.prefix == p {
			return fmt.Errorf("duplicate trusted address %s (first on line %d)", p, t.line)
		}
	}
	s.trust = append(s.trust, trustRule{prefix: p, keyword: keyword, line: n})
	return nil
}

// EveryoneTrusted returns where ("FILE:LINE") a server none line trusts
// every address of a family (*.*.*.*, 0.0.0.0/0, ::/0), or "" if none
// does.
func (s *Secrets) EveryoneTrusted() string {
	for _, t := range s.trust {
		if t.prefix.Bits() == 0 {
			return fmt.Sprintf("%s:%d", s.name, t.line)
		}
	}
	return ""
}

// TrustedNetworks lists the networks the server none lines trust, for the
// policy's warning about trust wider than a /8 of public space.
func (s *Secrets) TrustedNetworks() []netip.Prefix {
	if s == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, len(s.trust))
	for _, t := range s.trust {
		out = append(out, t.prefix)
	}
	return out
}

// parseAddressPattern reads the address of a server none line: an address
// (192.0.2.1, 2001:db8::1), a CIDR prefix (192.168.0.0/24, fd00::/8; host
// bits are cleared), or an E-MailRelay wildcard of four dotted parts whose
// trailing parts are '*' (192.168.0.*, 10.*.*.*, *.*.*.*).
func parseAddressPattern(s string) (netip.Prefix, error) {
	if strings.Contains(s, "*") {
		return parseWildcard(s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid address prefix %q: want an address, a CIDR prefix like 192.168.0.0/24 or fd00::/8, or a wildcard like 192.168.0.*", s)
		}
		if p.Addr().Is4In6() {
			// ::ffff:192.168.0.0/120 means 192.168.0.0/24.
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("invalid address prefix %q: an IPv4-mapped prefix needs at least 96 bits", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address %q: want an address, a CIDR prefix like 192.168.0.0/24 or fd00::/8, or a wildcard like 192.168.0.*", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseWildcard(s string) (netip.Prefix, error) {
	bad := func() (netip.Prefix, error) {
		return netip.Prefix{}, fmt.Errorf("invalid wildcard %q: want four dotted parts with '*' only at the end, like 192.168.0.* or 10.*.*.*", s)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return bad()
	}
	var b [4]byte
	bits := 0
	for i, p := range parts {
		if p == "*" {
			continue
		}
		if i > 0 && parts[i-1] == "*" {
			return bad() // 10.*.0.1
		}
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return bad()
		}
		b[i] = byte(n)
		bits += 8
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), bits), nil
}
