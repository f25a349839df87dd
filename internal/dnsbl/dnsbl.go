// Package dnsbl looks client addresses up in DNS blocklists (RFC 5782), as
// E-MailRelay's --dnsbl and Postfix's reject_rbl_client do.
//
// For a client 192.0.2.99 and a zone zen.example, Check asks the
// configured DNS server for the A records of 99.2.0.192.zen.example (for
// IPv6, the 32 reversed nibbles of the address), for every zone at once.
// Answers within 127.0.0.0/8 mean "listed", except 127.255.255.0/24, which
// Spamhaus and others use for errors such as "query refused: you are
// using a public resolver" rather than for listings; any other answer is
// ignored. A zone given with a Postfix result filter
// ("zen.example=127.0.0.[2..11]") lists the client only for answers that
// match the filter. For each listing zone Check also fetches the TXT record
// of the same name, the list's explanation, for the reply text.
//
// IPv6 clients are looked up with A queries too, as RFC 5782 says (E-MailRelay
// asks AAAA there; lists answer A).
//
// Check does not decide which clients to look up: the caller (the policy
// engine, for --dnsbl) skips trusted clients (mynetworks, which hold
// loopback and the private ranges by default) and clients that logged in;
// E-MailRelay never checks loopback, unique-local and link-local addresses,
// since lists cannot say anything about them and queries leak them.
//
// Failure behaviour: a zone that gives no answer before Config.Timeout (or
// whose server cannot be reached) counts as "listed" if Config.FailClosed,
// else as "not listed"; Result.TimedOut reports it either way. A zone that
// answers with a DNS error (SERVFAIL, REFUSED) or only with 127.255.255.x
// counts as not listed, as in E-MailRelay and Postfix, and is reported in
// Result.Failures for the log.
package dnsbl

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is E-MailRelay's default DNSBL timeout.
const DefaultTimeout = 5 * time.Second

// Config says which lists to consult and how to judge their answers.
type Config struct {
	// Zones are the blocklists, queried in parallel.
	Zones []Zone
	// Threshold is how many zones must list a client for Result.Listed.
	// Zero means consult and log only: Listed is never set. ParseEmailRelay
	// makes it 1 by default.
	Threshold int
	// Timeout bounds a whole Check; zero means DefaultTimeout.
	Timeout time.Duration
	// FailClosed makes a client whose lookups time out count as listed
	// (E-MailRelay's negative timeout). It has no effect with Threshold 0.
	FailClosed bool
	// Server is the DNS server, ip:port. Empty means the first nameserver
	// of /etc/resolv.conf, or 127.0.0.1:53 if there is none.
	Server string
}

// Zone is one blocklist with an optional result filter.
type Zone struct {
	// Name is the list's DNS zone, such as "zen.spamhaus.org".
	Name string
	// Filter is the Postfix result filter as written, such as
	// "127.0.0.[2..11]", or empty to accept any 127.0.0.0/8 answer but
	// 127.255.255.x.
	Filter string
	octets *[4][]octetRange // parsed Filter; nil if none
}

type octetRange struct{ lo, hi uint8 }

// String returns the zone as ParseRBLSpec reads it.
func (z Zone) String() string {
	if z.Filter == "" {
		return z.Name
	}
	return z.Name + "=" + z.Filter
}

// lists reports whether an A record a in an answer from z means "listed".
func (z Zone) lists(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	if z.octets == nil {
		return b[0] == 127 && !(b[1] == 255 && b[2] == 255)
	}
	for i, ranges := range z.octets {
		ok := false
		for _, r := range ranges {
			if b[i] >= r.lo && b[i] <= r.hi {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ParseRBLSpec parses a blocklist in Postfix's reject_rbl_client syntax:
// a zone name, optionally followed by "=" and a result filter of four
// dot-separated octets, each a number or a bracketed list of numbers and
// ranges separated by ";", as in
//
//	zen.spamhaus.org
//	zen.spamhaus.org=127.0.0.2
//	zen.spamhaus.org=127.0.0.[2..11]
//	bl.example.net=127.0.[0;1].[2;4..7]
//
// postscreen's "*weight" suffix is not supported.
func ParseRBLSpec(s string) (Zone, error) {
	name, filter, hasFilter := strings.Cut(strings.TrimSpace(s), "=")
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	// isDomain takes one final dot: a second ("bl.example..") would be
	// kept in the name and make every query name invalid.
	if !isDomain(name) || strings.HasSuffix(name, ".") {
		return Zone{}, fmt.Errorf("dnsbl: %q: not a DNS zone name", name)
	}
	z := Zone{Name: name}
	if !hasFilter {
		return z, nil
	}
	octets, err := parseFilter(filter)
	if err != nil {
		return Zone{}, fmt.Errorf("dnsbl: %q: bad result filter: %w", s, err)
	}
	z.Filter, z.octets = filter, octets
	return z, nil
}

func parseFilter(f string) (*[4][]octetRange, error) {
	var out [4][]octetRange
	rest := f
	for i := range 4 {
		if i > 0 {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, "."); !ok {
				return nil, errors.New("want four octets")
			}
		}
		var elem string
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errors.New("missing ]")
			}
			elem, rest = rest[1:end], rest[end+1:]
			if elem == "" {
				return nil, errors.New("empty []")
			}
		} else {
			end := strings.IndexByte(rest, '.')
			if end < 0 {
				end = len(rest)
			}
			elem, rest = rest[:end], rest[end:]
			if strings.ContainsAny(elem, ";[]") || strings.Contains(elem, "..") {
				return nil, fmt.Errorf("bad octet %q", elem)
			}
		}
		for _, item := range strings.Split(elem, ";") {
			loS, hiS, isRange := strings.Cut(item, "..")
			lo, err := parseOctet(loS)
			if err != nil {
				return nil, err
			}
			hi := lo
			if isRange {
				if hi, err = parseOctet(hiS); err != nil {
					return nil, err
				}
				if hi < lo {
					return nil, fmt.Errorf("empty range %q", item)
				}
			}
			out[i] = append(out[i], octetRange{lo, hi})
		}
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q", rest)
	}
	return &out, nil
}

func parseOctet(s string) (uint8, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("bad octet %q", s)
	}
	return uint8(n), nil
}

// isDomain tells a zone name from an IP address or a number, as
// E-MailRelay does: a domain's last label is not all digits ("127.0.0.com"
// is a domain, "127.0.0.1" and "::1" are not). Stricter than E-MailRelay,
// a zone needs two labels or more, of letters, digits, "-" and "_", not
// starting or ending with "-", so that a mistyped number ("x", "-1") is an
// error rather than a zone.
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	tld := s[strings.LastIndexByte(s, '.')+1:]
	return strings.Trim(tld, "0123456789") != ""
}

// ParseEmailRelay parses the argument of E-MailRelay's --dnsbl. Two
// orders are accepted, told apart by the first field:
//
//	ZONE[,ZONE...][,THRESHOLD[,TIMEOUT[,DNS-SERVER]]]   (E-MailRelay 2.5 and later)
//	DNS-SERVER,TIMEOUT,THRESHOLD,ZONE[,ZONE...]         (earlier; the reverse)
//
// If the first field is a domain name (two labels or more, the last not all
// digits), the first form is read: the leading domain names are the
// zones, then come the optional integers and server. Otherwise the first
// field is the DNS server (an IP address with an optional port; empty for
// the default) and at least four fields are needed. The integer order,
// threshold then timeout, flips with the form, so the two integers are
// never told apart by value.
//
// THRESHOLD defaults to 1; 0 means consult and log only. TIMEOUT is in
// milliseconds, or seconds with an "s" suffix, default 5000; a negative
// timeout fails closed (treats a client whose lookups time out as listed).
// DNS-SERVER is an IP address, with an optional port (default 53); the
// default is the first nameserver of /etc/resolv.conf.
//
// As an extension, a zone may carry a Postfix result filter
// ("zen.spamhaus.org=127.0.0.[2..11]", see ParseRBLSpec).
func ParseEmailRelay(spec string) (Config, error) {
	fields := strings.Split(spec, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	cfg := Config{Threshold: 1, Timeout: DefaultTimeout}
	var threshold, timeout, server string
	var zones []string
	if zoneField(fields[0]) {
		n := 0
		for n < len(fields) && zoneField(fields[n]) {
			n++
		}
		zones = fields[:n]
		rest := fields[n:]
		if len(rest) > 3 {
			return Config{}, fmt.Errorf("dnsbl: %q: unused fields after the DNS server: %q", spec, rest[3:])
		}
		rest = append(rest, "", "", "")
		threshold, timeout, server = rest[0], rest[1], rest[2]
	} else {
		if len(fields) < 4 {
			return Config{}, fmt.Errorf("dnsbl: %q: want ZONE[,ZONE...][,THRESHOLD[,TIMEOUT[,DNS-SERVER]]] or DNS-SERVER,TIMEOUT,THRESHOLD,ZONE[,ZONE...]", spec)
		}
		server, timeout, threshold, zones = fields[0], fields[1], fields[2], fields[3:]
	}

	for _, s := range zones {
		z, err := ParseRBLSpec(s)
		if err != nil {
			if _, herr := netip.ParseAddrPort(s); herr == nil || isAddr(s) {
				// "--dnsbl S,T,N,Z --dnsbl S2,T2,N2,Z2": E-MailRelay
				// joins repeated values with commas.
				return Config{}, fmt.Errorf("dnsbl: %q: %q is a DNS server where a zone is expected: give the server, timeout and threshold once, then every zone (a repeated --dnsbl adds its fields to the first's)", spec, s)
			}
			return Config{}, err
		}
		cfg.Zones = append(cfg.Zones, z)
	}
	if threshold != "" {
		n, err := strconv.Atoi(threshold)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("dnsbl: %q: bad threshold %q", spec, threshold)
		}
		cfg.Threshold = n
	}
	if timeout != "" {
		d, negative, err := parseTimeout(timeout)
		if err != nil {
			return Config{}, fmt.Errorf("dnsbl: %q: bad timeout %q", spec, timeout)
		}
		cfg.Timeout = d
		cfg.FailClosed = negative && cfg.Threshold > 0
	}
	if server != "" {
		s, err := parseServer(server)
		if err != nil {
			return Config{}, fmt.Errorf("dnsbl: %q: bad DNS server %q: %w", spec, server, err)
		}
		cfg.Server = s
	}
	return cfg, nil
}

// zoneField reports whether a --dnsbl field is a zone, possibly with a
// result filter.
func zoneField(f string) bool {
	name, _, _ := strings.Cut(f, "=")
	return isDomain(name)
}

// parseTimeout parses E-MailRelay's "500", "-500", "5s" or "-5s".
func parseTimeout(s string) (d time.Duration, negative bool, err error) {
	unit := time.Millisecond
	if num, ok := strings.CutSuffix(s, "s"); ok {
		s, unit = num, time.Second
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false, err
	}
	if n < 0 {
		return time.Duration(-n) * unit, true, nil
	}
	return time.Duration(n) * unit, false, nil
}

// parseServer parses "IP", "IP:PORT" or "[IPv6]:PORT" into ip:port.
func parseServer(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", errors.New("not an IP address with an optional port")
	}
	return netip.AddrPortFrom(a, 53).String(), nil
}

// isAddr reports whether s is an IP address.
func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
