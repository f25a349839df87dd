package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the SMTP port used when a next hop gives none.
const DefaultPort = 25

// SplitResult splits a transport(5) lookup result "transport:nexthop" at
// its first colon, as Postfix's trivial-rewrite does. Either part may be
// empty; a result without a colon is a transport with an empty next hop.
// Surrounding whitespace is removed from both parts.
//
//	"smtp:[relay.example]:587" -> "smtp", "[relay.example]:587"
//	":[relay.example]"         -> "", "[relay.example]"
//	"out_default:"             -> "out_default", ""
//	"error:5.1.1 no such user" -> "error", "5.1.1 no such user"
func SplitResult(s string) (transport, nexthop string) {
	transport, nexthop, _ = strings.Cut(s, ":")
	return strings.TrimSpace(transport), strings.TrimSpace(nexthop)
}

// NextHop is a parsed SMTP next-hop destination, in the syntax of Postfix's
// relayhost, default_transport and transport(5) next hops.
type NextHop struct {
	// Host is the domain or host name, lower-cased and without a trailing
	// dot, or the IP address of an address literal; never in brackets.
	Host string
	// Port is the port given, or 0 for the default (DefaultPort).
	Port int
	// MX is true when Host's MX records are to be looked up: the next hop
	// was not written in brackets.
	MX bool
}

// ParseNextHop parses an SMTP next hop:
//
//	example.com            MX lookup of example.com, port 25
//	example.com:2525       MX lookup, then port 2525 on each exchanger
//	[mail.example.com]     A/AAAA of mail.example.com, no MX lookup
//	[mail.example.com]:587
//	[192.0.2.1], [192.0.2.1]:25, [2001:db8::1]:25, [IPv6:2001:db8::1]
//
// The port may be a number or one of the service names smtp, submission,
// submissions and smtps. An IP address must be in brackets, as
// transport(5) requires. Lists of next hops (Postfix 3.5's
// "relayhost = [a], [b]") are refused.
func ParseNextHop(s string) (NextHop, error) {
	n, err := parseNextHop(s)
	if err != nil {
		return NextHop{}, fmt.Errorf("route: next hop %q: %w", s, err)
	}
	return n, nil
}

func parseNextHop(s string) (NextHop, error) {
	if s == "" {
		return NextHop{}, errors.New("empty")
	}
	if strings.ContainsAny(s, ", \t\r\n") {
		return NextHop{}, errors.New("lists of next hops and whitespace are not supported")
	}
	var n NextHop
	hostPart, portPart := s, ""
	hasPort := false
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return NextHop{}, errors.New("missing ']'")
		}
		hostPart = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return NextHop{}, fmt.Errorf("unexpected %q after ']'", rest)
			}
			portPart, hasPort = rest[1:], true
		}
		if len(hostPart) >= 5 && strings.EqualFold(hostPart[:5], "ipv6:") {
			a, err := netip.ParseAddr(hostPart[5:])
			if err != nil || !a.Is6() || a.Zone() != "" {
				return NextHop{}, fmt.Errorf("bad IPv6 address %q", hostPart[5:])
			}
			hostPart = a.String()
		}
	} else {
		n.MX = true
		if i := strings.IndexByte(s, ':'); i >= 0 {
			hostPart, portPart, hasPort = s[:i], s[i+1:], true
			if strings.IndexByte(portPart, ':') >= 0 {
				return NextHop{}, errors.New("an IPv6 address must be in brackets: [2001:db8::1]")
			}
		}
	}
	if hasPort {
		p, err := parsePort(portPart)
		if err != nil {
			return NextHop{}, err
		}
		n.Port = p
	}
	// A trailing dot makes no address ("192.0.2.1." is not a name either).
	if a, err := netip.ParseAddr(strings.TrimSuffix(hostPart, ".")); err == nil {
		if n.MX {
			return NextHop{}, fmt.Errorf("an IP address must be in brackets, [%s], since it has no MX records", a)
		}
		if a.Zone() != "" {
			return NextHop{}, fmt.Errorf("IPv6 zone in %q is not supported", hostPart)
		}
		n.Host = a.Unmap().String()
		return n, nil
	}
	host := strings.ToLower(strings.TrimSuffix(hostPart, "."))
	if err := checkHostName(host); err != nil {
		return NextHop{}, err
	}
	n.Host = host
	return n, nil
}

// services are the service names Postfix users write for SMTP ports.
var services = map[string]int{"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}

func parsePort(s string) (int, error) {
	if p, ok := services[strings.ToLower(s)]; ok {
		return p, nil
	}
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad port %q", s)
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range", p)
	}
	return p, nil
}

// checkHostName accepts what can be a DNS name: non-empty labels of at most
// 63 octets, 253 in all, and no characters that have a meaning in next hops
// or addresses. Non-ASCII (UTF-8) labels pass; they are looked up as given.
func checkHostName(h string) error {
	if h == "" {
		return errors.New("missing host")
	}
	if len(h) > 253 {
		return errors.New("host name longer than 253 octets")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("empty label in host name %q", h)
		}
		if len(label) > 63 {
			return fmt.Errorf("label longer than 63 octets in host name %q", h)
		}
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f || strings.IndexByte(`[]:@,;"\/()<>`, c) >= 0 {
			return fmt.Errorf("bad character %q in host name", c)
		}
	}
	return nil
}

// String formats the next hop so that ParseNextHop gives it back:
// "example.com", "example.com:2525", "[192.0.2.1]", "[2001:db8::1]:587".
func (n NextHop) String() string {
	s := n.Host
	if !n.MX {
		s = "[" + s + "]"
	}
	if n.Port != 0 {
		s += ":" + strconv.Itoa(n.Port)
	}
	return s
}

// Literal reports whether Host is an IP address, to be connected to without
// any DNS lookup.
func (n NextHop) Literal() bool {
	_, err := netip.ParseAddr(n.Host)
	return err == nil
}
