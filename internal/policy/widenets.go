package policy

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// notPublic are the IPv4 networks that are not the public Internet's
// (RFC 6890: this network, private, shared, loopback, link-local,
// protocol assignments, documentation, benchmarking, multicast,
// reserved), disjoint. Trusting them opens the relay to nobody outside.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

// The IPv6 Internet is global unicast (2000::/3) less documentation.
var (
	public6    = netip.MustParsePrefix("2000::/3")
	notPublic6 = netip.MustParsePrefix("2001:db8::/32")
)

// Wide trust: more public address space than a /8 of IPv4 (16,777,216
// addresses; a large ISP's share) or a /16 of IPv6 (counted in /64s).
const (
	wideBits4 = 8
	wideBits6 = 16
)

// WideNetworks says, for a startup warning, how much of the public
// Internet mynetworks trusts when it is more than a /8 of IPv4 or a /16
// of IPv6 in total; "" when it is less. 0.0.0.0/0 and ::/0 are refused
// (ParseNetworks), but halves (0.0.0.0/1 with 128.0.0.0/1), 2000::/3 or
// ::ffff:0:0/96 trust as much, and with --remote-clients make an open
// relay. The networks of the secrets file's "server none" lines count
// too, unless an address verifier decides what trusted clients may send.
// Only networks and addresses written in the setting or its files
// count (a lookup table's keys are not listed); a negation is not
// subtracted, so a list that carves its exceptions out of a wide network
// is warned about too.
func (e *Engine) WideNetworks() string {
	if e == nil {
		return ""
	}
	var ps []netip.Prefix
	for _, r := range e.named.Load().nets {
		if r.Table == nil && !r.Not && r.Prefix.IsValid() {
			ps = append(ps, r.Prefix)
		}
	}
	ps = append(ps, e.opts.MyNetworks...)
	// E-MailRelay's "server none" lines trust as mynetworks does where
	// everyoneTrusted would refuse them all: no address verifier.
	who := "mynetworks trusts "
	if t, ok := e.opts.Trusted.(interface{ TrustedNetworks() []netip.Prefix }); ok && e.opts.Verifier == nil {
		if tn := t.TrustedNetworks(); len(tn) > 0 {
			ps, who = append(ps, tn...), "mynetworks and the secrets file's \"server none\" lines trust "
		}
	}
	if w := wideNetworks(ps); w != "" {
		return who + w
	}
	return ""
}

// wideNetworks says how much public space the trusted networks ps hold
// when it is too much ("86% of the Internet ... to relay anywhere: ..."),
// else "".
func wideNetworks(ps []netip.Prefix) string {
	var v4 []netip.Prefix
	var v6 []netip.Prefix
	for _, p := range ps {
		p = p.Masked()
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// ::ffff:0:0/96 holds IPv4 clients as IPv6 sees them.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	var wide []string
	if n := publicCount(outermost(v4), notPublic, 32); n > 1<<(32-wideBits4) {
		wide = append(wide, fmt.Sprintf("%d public IPv4 addresses (%s of the Internet)", n, share(n, 1<<32)))
	}
	if n := publicCount(within(outermost(v6), public6), []netip.Prefix{notPublic6}, 64); n > 1<<(64-wideBits6) {
		wide = append(wide, fmt.Sprintf("%s of the public IPv6 Internet", share(n, 1<<(64-3))))
	}
	if len(wide) == 0 {
		return ""
	}
	return strings.Join(wide, " and ") + " to relay anywhere: any of them that can connect (--remote-clients) may use this relay as an open relay; list the networks that are really yours"
}

// outermost drops the prefixes that another one of ps holds: what is left
// is disjoint.
func outermost(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	var out []netip.Prefix
	for _, p := range ps {
		held := false
		for _, q := range out {
			if q.Overlaps(p) { // q is as wide or wider: it holds p
				held = true
				break
			}
		}
		if !held {
			out = append(out, p)
		}
	}
	return out
}

// within is the part of each of ps that lies in w.
func within(ps []netip.Prefix, w netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		switch {
		case w.Bits() >= p.Bits() && p.Contains(w.Addr()):
			out = append(out, w)
		case p.Bits() >= w.Bits() && w.Contains(p.Addr()):
			out = append(out, p)
		}
	}
	return out
}

// publicCount counts the addresses (IPv4) or /64s (IPv6; unit 64) of the
// disjoint prefixes ps that no prefix of not holds, saturating.
func publicCount(ps, not []netip.Prefix, unit int) uint64 {
	size := func(p netip.Prefix) uint64 {
		if unit-p.Bits() >= 64 {
			return 1 << 63 // past any threshold
		}
		if p.Bits() >= unit {
			return 1
		}
		return 1 << (unit - p.Bits())
	}
	var n uint64
	for _, p := range ps {
		c := size(p)
		for _, q := range not {
			if q.Addr().BitLen() != p.Addr().BitLen() || !q.Overlaps(p) {
				continue
			}
			if q.Bits() <= p.Bits() {
				c = 0 // all of p is not public
				break
			}
			c -= size(q)
		}
		s, carry := bits.Add64(n, c, 0)
		if carry != 0 {
			return 1<<64 - 1
		}
		n = s
	}
	return n
}

// share is n of total as a percentage, or a fraction when that is small.
func share(n, total uint64) string {
	pct := float64(n) / float64(total) * 100
	if pct >= 1 {
		return fmt.Sprintf("%.0f%%", pct)
	}
	return fmt.Sprintf("%.2g%%", pct)
}
