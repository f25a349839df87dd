package enforce

import (
	"fmt"
	"net/netip"
	"strings"
)

// Default widths of a client's ban: an IPv4 address alone, and an IPv6
// client's /64, the least any IPv6 customer gets (RFC 6177) and the unit
// by which Gmail rates IPv6 senders. A client with a /64 moves to another
// of its addresses at will, so a ban of one IPv6 address stops nobody.
const (
	DefaultBanIPv4Prefix = 32
	DefaultBanIPv6Prefix = 64
)

// Bounds of the configurable widths: a ban never covers more than an IPv4
// /16 or an IPv6 /32 (a whole provider's allocation).
const (
	MinBanIPv4Prefix = 16
	MinBanIPv6Prefix = 32
)

// BanWidth is the prefix length a ban of a client covers, for each address
// family ([enforce] ban_ipv4_prefix_length, ban_ipv6_prefix_length;
// postfix-enforcer's --ban-ipv4-prefix-length, --ban-ipv6-prefix-length).
// Zero is the default.
type BanWidth struct {
	IPv4, IPv6 int
}

// CheckBanWidth says what is wrong with a prefix length, "" if nothing:
// bits must be in [min, max].
func CheckBanWidth(bits, min, max int) string {
	if bits < min || bits > max {
		return fmt.Sprintf("%d is not a prefix length from %d to %d", bits, min, max)
	}
	return ""
}

// Sparer says which clients a ban of a network never covers (the
// welcomelist's addresses, the trusted networks) and whether a network
// holds any of them. *Spared implements it.
type Sparer interface {
	// Spared reports whether the client at ip is exempt.
	Spared(ip netip.Addr) bool
	// SparesWithin reports whether any exempt address lies in p.
	SparesWithin(p netip.Prefix) bool
	// Welcomed reports whether the client at ip, whose verified host
	// name is name ("" when not known), is on the welcomelist now: no
	// ban applies to it, not even one of its own address made before
	// it was listed (welcomelisted clients are never sanctioned).
	Welcomed(ip netip.Addr, name string) bool
	// NamesWelcome reports whether a client's host name may put it on
	// the welcomelist (a host-name pattern): a banned client is then
	// refused only once its verified name is known.
	NamesWelcome() bool
}

// TrustedNets are trusted clients (mynetworks); *policy.Engine is one. Its
// TrustedWithin, if it has it, says whether a network holds any.
type TrustedNets interface {
	Trusted(ip netip.Addr) bool
}

// Spared is the relay's and the companion's Sparer: the welcomelist's
// addresses, ranges and blocks, and the trusted networks. Host-name
// patterns cannot be told from an address alone: see docs/enforce.md.
type Spared struct {
	Welcome *Welcomelist
	Trusted TrustedNets
	// Nets are more trusted networks (the companion's Postfix mynetworks).
	Nets []netip.Prefix
}

// Spared implements Sparer.
func (s *Spared) Spared(ip netip.Addr) bool {
	if s == nil {
		return false
	}
	ip = banIP(ip)
	for _, n := range s.Nets {
		if n.Contains(ip) {
			return true
		}
	}
	return s.Welcome.Welcome(ip, "") || s.Trusted != nil && s.Trusted.Trusted(ip)
}

// Welcomed implements Sparer.
func (s *Spared) Welcomed(ip netip.Addr, name string) bool {
	return s != nil && s.Welcome.Welcome(banIP(ip), name)
}

// NamesWelcome implements Sparer.
func (s *Spared) NamesWelcome() bool { return s != nil && s.Welcome.NeedsNames() }

// SparesWithin implements Sparer.
func (s *Spared) SparesWithin(p netip.Prefix) bool {
	if s == nil {
		return false
	}
	for _, n := range s.Nets {
		if n.Overlaps(p) {
			return true
		}
	}
	if t, ok := s.Trusted.(interface{ TrustedWithin(netip.Prefix) bool }); ok && t.TrustedWithin(p) {
		return true
	}
	return s.Welcome.Within(p)
}

// BanNet is the network a ban of the client at ip covers: ip's prefix of
// width's length for its family. It is ip alone (/32, /128) when
//
//   - the family's width is the whole address;
//   - ip is loopback, link-local, multicast or unspecified: such a network
//     is no client's own (fe80::/64 is every host on the link);
//   - ip is in a range where a network holds many unrelated clients: NAT64
//     (64:ff9b::/96, 64:ff9b:1::/48: one IPv4 host each, the /64 the whole
//     IPv4 Internet) and Teredo (2001::/32: the /64 is every client of one
//     Teredo server);
//   - the network holds an address that spare exempts (a welcomelisted or
//     trusted host beside the client): a ban of it, which fail2ban enforces
//     at the firewall, would cut that host off.
//
// IPv4-mapped addresses are IPv4. An invalid ip gives an invalid prefix.
func BanNet(ip netip.Addr, width BanWidth, spare Sparer) netip.Prefix {
	ip = banIP(ip)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	whole := netip.PrefixFrom(ip, ip.BitLen())
	bits := width.IPv6
	if ip.Is4() {
		bits = width.IPv4
		if bits == 0 {
			bits = DefaultBanIPv4Prefix
		}
	} else if bits == 0 {
		bits = DefaultBanIPv6Prefix
	}
	if bits >= ip.BitLen() || bits <= 0 || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() ||
		ip.IsUnspecified() || ip.IsLinkLocalMulticast() || manyClientsPerNet(ip) {
		return whole
	}
	p, err := ip.Prefix(bits)
	if err != nil || spare != nil && spare.SparesWithin(p) {
		return whole
	}
	return p
}

// manyClientsPerNet: IPv6 ranges whose networks are shared by unrelated
// clients (BanNet).
var sharedNets = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64, RFC 6052
	netip.MustParsePrefix("64:ff9b:1::/48"), // NAT64 local use, RFC 8215
	netip.MustParsePrefix("2001::/32"),      // Teredo, RFC 4380
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated)
}

func manyClientsPerNet(ip netip.Addr) bool {
	for _, n := range sharedNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseBanTarget reads what an administrator bans or unbans: an address
// (IPv4-mapped read as IPv4; a zone is refused) or a network ADDR/LEN (host
// bits are cleared: 2001:db8::7/64 is 2001:db8::/64).
func ParseBanTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP address or network: %q", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		min := MinBanIPv6Prefix
		if p.Addr().Is4() {
			min = MinBanIPv4Prefix
		}
		if p.Bits() < min {
			return netip.Prefix{}, fmt.Errorf("%s is wider than a ban may be (/%d)", s, min)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an IP address or network: %q", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// banTarget is how a ban's network is written: a bare address for a
// single one (as before there were networks, and as relay-enforcer's
// jails read it), ADDR/LEN for a network.
func banTarget(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
