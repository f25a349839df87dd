package table

import (
	"net/netip"
	"strings"
)

// cidrRule is one line of a cidr_table(5) file: a match rule or an "if".
type cidrRule struct {
	prefix netip.Prefix
	negate bool
	result string
	line   int
	isIf   bool
	end    int // for an if: index of the first rule after its endif
}

type cidrTable struct {
	rules []cidrRule
}

// lookup applies the rules in order; the first match wins. As in Postfix, a
// rule of the other address family neither matches nor, negated, matches.
func (t *cidrTable) lookup(a netip.Addr) (string, bool) {
	for i := 0; i < len(t.rules); {
		r := &t.rules[i]
		hit := r.prefix.Addr().Is4() == a.Is4() && r.prefix.Contains(a) != r.negate
		if r.isIf {
			if hit {
				i++
			} else {
				i = r.end
			}
			continue
		}
		if hit {
			return r.result, true
		}
		i++
	}
	return "", false
}

// parseLookupAddr parses a lookup key as an IP address, with or without
// brackets. It does not unmap IPv4-mapped IPv6 addresses: Postfix compares
// those as IPv6.
func parseLookupAddr(key string) (netip.Addr, bool) {
	if len(key) > 2 && key[0] == '[' && key[len(key)-1] == ']' {
		key = key[1 : len(key)-1]
	}
	a, err := netip.ParseAddr(key)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// parseCIDR parses a cidr_table(5) file: "pattern result" lines where the
// pattern is network/prefix or a bare address, optionally negated with "!",
// and "if pattern" ... "endif" blocks (Postfix 3.2 and later).
func parseCIDR(p *problems, lines []logicalLine) *cidrTable {
	t := &cidrTable{}
	var open []int
	for _, ll := range lines {
		s := ll.text
		switch {
		case keyword(s, "if"):
			pat, rest := cutSpace(trimLeft(s[2:]))
			if pat == "!" {
				pat, rest = cutSpace(rest)
				pat = "!" + pat
			}
			if pat == "" {
				p.errorf(ll.line, "missing pattern after if")
				pat = "0.0.0.0/32"
			}
			prefix, negate, err := parseCIDRPattern(pat)
			if err != "" {
				p.errorf(ll.line, "%s", err)
			}
			if rest != "" {
				// Postfix skips the line ("bad mask value"): the rules
				// of the block would apply to every client.
				p.errorf(ll.line, "text %q after the pattern of if: Postfix skips this line; comments go on lines of their own", clip(rest))
			}
			open = append(open, len(t.rules))
			t.rules = append(t.rules, cidrRule{prefix: prefix, negate: negate, line: ll.line, isIf: true})
		case keyword(s, "endif"):
			if len(open) == 0 {
				p.errorf(ll.line, "endif without matching if")
				continue
			}
			if rest := trimSpace(s[5:]); rest != "" {
				// Postfix skips the line ("garbage after ENDIF"): its
				// block would run on to the end of the file.
				p.errorf(ll.line, "text %q after endif: Postfix skips this line; comments go on lines of their own", clip(rest))
			}
			t.rules[open[len(open)-1]].end = len(t.rules)
			open = open[:len(open)-1]
		default:
			pat, result := cutSpace(s)
			if pat == "!" { // "! 10.0.0.0/8 result"
				pat, result = cutSpace(result)
				pat = "!" + pat
			}
			prefix, negate, err := parseCIDRPattern(pat)
			if err != "" {
				p.errorf(ll.line, "%s", err)
				continue
			}
			if result == "" {
				p.errorf(ll.line, "expected format: network/prefix whitespace result, got %q", clip(s))
				continue
			}
			t.rules = append(t.rules, cidrRule{prefix: prefix, negate: negate, result: result, line: ll.line})
		}
	}
	for range open {
		p.errorf(lastLine(lines), "missing endif: more ifs than endifs")
	}
	return t
}

// cutSpace splits s at its first run of whitespace.
func cutSpace(s string) (first, rest string) {
	i := 0
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return s[:i], trimSpace(s[i:])
}

// parseCIDRPattern parses [!]address[/prefix], where the address may be in
// brackets ([addr]/len or [addr/len]). Host bits beyond the prefix are an
// error, as in Postfix.
func parseCIDRPattern(s string) (netip.Prefix, bool, string) {
	orig := s
	negate := false
	for strings.HasPrefix(s, "!") {
		negate = !negate
		s = s[1:]
	}
	if strings.HasPrefix(s, "[") {
		inner, after, ok := strings.Cut(s[1:], "]")
		switch {
		case !ok:
			return netip.Prefix{}, false, "missing ']' in " + quote(orig)
		case after != "" && !strings.HasPrefix(after, "/"):
			return netip.Prefix{}, false, "garbage after ']' in " + quote(orig)
		}
		s = inner + after
	}
	addrPart, bits, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false, "bad address pattern " + quote(orig) + ": want an IPv4 or IPv6 address with an optional /prefix length"
	}
	if !hasBits {
		return netip.PrefixFrom(a, a.BitLen()), negate, ""
	}
	n := 0
	for i := 0; i < len(bits); i++ {
		if bits[i] < '0' || bits[i] > '9' || n > a.BitLen() {
			n = -1
			break
		}
		n = n*10 + int(bits[i]-'0')
	}
	if bits == "" || n < 0 || n > a.BitLen() {
		return netip.Prefix{}, false, "bad prefix length in " + quote(orig)
	}
	pfx := netip.PrefixFrom(a, n)
	if m := pfx.Masked(); m.Addr() != a {
		return netip.Prefix{}, false, "non-null host address bits in " + quote(orig) + ", perhaps you should use " + quote(m.String()) + " instead"
	}
	return pfx, negate, ""
}

func quote(s string) string { return "\"" + clip(s) + "\"" }
