package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// DefaultDNSTimeout is how long Resolver waits for each DNS answer when its
// Timeout is zero.
const DefaultDNSTimeout = 5 * time.Second

// Resolver turns routes into addresses to connect to. The zero Resolver
// asks the first nameserver of /etc/resolv.conf (read once, on first use).
// It is safe for concurrent use and must not be copied after first use.
type Resolver struct {
	// Server is the recursive DNS server, "ip:port".
	Server string
	// Timeout bounds each query (one attempt over UDP, then TCP if the
	// answer was truncated); DefaultDNSTimeout when zero. A query that
	// times out is a temporary failure.
	Timeout time.Duration

	once   sync.Once
	server string // guarded by once
	// shuffle reorders MX hosts of equal preference; rand.Shuffle when
	// nil. Tests set it.
	shuffle func(n int, swap func(i, j int))
}

// DNSError is a failure to find where to deliver. Temporary failures
// (SERVFAIL, timeouts, unreachable servers) are worth retrying later;
// permanent ones (NXDOMAIN, null MX, no addresses) bounce the recipient.
type DNSError struct {
	Name   string // the name looked up
	Type   string // the query type: "MX", "A", "AAAA"; "" for the whole route
	Reason string // what went wrong, for people
	// Code is the RFC 3463 code for a bounce or a deferral: 5.1.2 (domain
	// does not exist), 5.1.10 (null MX, RFC 7505), 5.4.4 (no addresses),
	// 4.4.3 (DNS failure).
	Code string
	Perm bool
	Err  error // the underlying error, if any
}

func (e *DNSError) Error() string {
	s := "route: " + e.Name
	if e.Type != "" {
		s += " " + e.Type
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DNSError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *DNSError) Temporary() bool { return !e.Perm }

// Hosts returns the addresses to try for rt, "ip:port", in order, without
// duplicates:
//
//   - for an MX route, the MX hosts by preference (hosts of equal
//     preference shuffled), each host's IPv4 then IPv6 addresses; without
//     MX records the domain's own addresses (RFC 5321 section 5.1, the
//     implicit MX); a null MX (RFC 7505) is a permanent error;
//   - for a [host] route, the host's addresses, or the address literal
//     itself without any DNS query.
//
// NXDOMAIN is permanent ("domain does not exist"); SERVFAIL, other error
// codes and timeouts are temporary. MX hosts whose addresses cannot be
// found are skipped; if none is left, the error is temporary if any lookup
// failed temporarily. A route with an Error gives that error back.
func (r *Resolver) Hosts(ctx context.Context, rt Route) ([]string, error) {
	ts, err := r.targets(ctx, rt)
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.addr
	}
	return out, err
}

// target is one address to try and the name it was found under: the MX
// host's name for an MX route (the domain's own without MX records), the
// route's host otherwise. The name is what the relay logs, as Postfix
// logs relay=NAME[IP], and what the enforcer trusts an upstream by: a
// Google Workspace domain's MX hosts are Google's.
type target struct {
	name, addr string
	// pref is the MX host's preference; 0 for the implicit MX and a
	// next hop in brackets.
	pref uint16
}

// targets is Hosts with the name of each address.
func (r *Resolver) targets(ctx context.Context, rt Route) ([]target, error) {
	if rt.Error != "" {
		return nil, &DNSError{Name: rt.NextHop, Reason: "route failed", Code: rt.Error[:codeOr(rt.Error)], Perm: !rt.Temporary()}
	}
	if rt.Host == "" {
		return nil, &DNSError{Name: rt.NextHop, Reason: "route has no host", Code: "5.4.4", Perm: true}
	}
	port := rt.Port
	if port == 0 {
		port = DefaultPort
	}
	if a, err := netip.ParseAddr(rt.Host); err == nil {
		return []target{{name: rt.Host, addr: net.JoinHostPort(a.String(), strconv.Itoa(port))}}, nil
	}
	host := dns.Fqdn(rt.Host)
	if !rt.MX {
		addrs, err := r.addrs(ctx, host)
		if err != nil {
			return nil, err
		}
		return withPort(rt.Host, addrs, port), nil
	}

	mxs, err := r.query(ctx, host, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	if err := nullMX(rt.Host, mxs); err != nil {
		return nil, err
	}
	var hosts []*dns.MX
	for _, rr := range mxs {
		if mx, ok := rr.(*dns.MX); ok {
			hosts = append(hosts, mx)
		}
	}
	if len(hosts) == 0 {
		// RFC 5321 section 5.1: the domain is its own MX, preference 0.
		addrs, err := r.addrs(ctx, host)
		if err != nil {
			return nil, err
		}
		return withPort(rt.Host, addrs, port), nil
	}
	r.sortMX(hosts)

	var out []target
	var seen []netip.Addr
	var firstErr, tempErr error
	for _, mx := range hosts {
		addrs, err := r.addrs(ctx, mx.Mx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			if tempErr == nil && err.(*DNSError).Temporary() {
				tempErr = err
			}
			continue
		}
		for _, a := range addrs {
			if !slices.Contains(seen, a) {
				seen = append(seen, a)
				t := withPort(strings.TrimSuffix(mx.Mx, "."), []netip.Addr{a}, port)[0]
				t.pref = mx.Preference
				out = append(out, t)
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if tempErr != nil {
		return nil, tempErr
	}
	return nil, &DNSError{Name: rt.Host, Type: "MX", Code: "5.4.4",
		Reason: "no address for any mail exchanger", Perm: true, Err: firstErr}
}

// codeOr returns the length of the code that starts an Error, or all of it.
func codeOr(s string) int {
	if n := codeLen(s); n > 0 {
		return n
	}
	return len(s)
}

// sortMX orders MX records by preference and shuffles each group of equal
// preference (RFC 5321 section 5.1).
func (r *Resolver) sortMX(mxs []*dns.MX) {
	slices.SortStableFunc(mxs, func(a, b *dns.MX) int { return cmp.Compare(a.Preference, b.Preference) })
	shuffle := r.shuffle
	if shuffle == nil {
		shuffle = rand.Shuffle
	}
	for i := 0; i < len(mxs); {
		j := i + 1
		for j < len(mxs) && mxs[j].Preference == mxs[i].Preference {
			j++
		}
		group := mxs[i:j]
		shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
		i = j
	}
}

// addrs returns a host's IPv4 then IPv6 addresses. It fails when neither
// query found any: temporarily if either failed so, otherwise permanently.
func (r *Resolver) addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs [2]error
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, qtype)
		if err != nil {
			errs[i] = err
			if ctx.Err() != nil {
				return nil, err
			}
			if err.(*DNSError).Perm {
				break // NXDOMAIN for A is NXDOMAIN for AAAA too
			}
			continue
		}
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				a = a.Unmap()
				if a.IsValid() && !a.IsUnspecified() && !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, err := range errs {
		if err != nil && err.(*DNSError).Temporary() {
			return nil, err
		}
	}
	if errs[0] != nil {
		return nil, errs[0] // NXDOMAIN
	}
	return nil, &DNSError{Name: strings.TrimSuffix(host, "."), Type: "A/AAAA", Code: "5.4.4",
		Reason: "host has no address", Perm: true}
}

// query asks one question and returns the answer section's records of
// qtype (CNAMEs followed by the server are skipped). Every failure is a
// *DNSError.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	tname := dns.TypeToString[qtype]
	short := strings.TrimSuffix(name, ".")
	if strings.ContainsFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) {
		// An internationalised name is asked for by its A-label, as
		// Postfix's dns_lookup asks (midna_domain_to_ascii): the UTF-8
		// bytes themselves name nothing in the DNS.
		a, err := idna.Lookup.ToASCII(short)
		if err != nil {
			return nil, &DNSError{Name: short, Type: tname, Code: "5.1.2", Reason: "not a valid domain name", Perm: true, Err: err}
		}
		name = dns.Fqdn(a)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, &DNSError{Name: short, Type: tname, Code: "5.1.2", Reason: "not a valid domain name", Perm: true}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(4096, false)

	var resp *dns.Msg
	var err error
	for _, network := range []string{"udp", "tcp"} {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		c := &dns.Client{Net: network, Timeout: timeout}
		resp, _, err = c.ExchangeContext(qctx, m, r.serverAddr())
		cancel()
		if err != nil || !resp.Truncated {
			break
		}
	}
	if err != nil {
		reason := "DNS query failed"
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			reason = "DNS query timed out"
		}
		return nil, &DNSError{Name: short, Type: tname, Code: "4.4.3", Reason: reason, Err: err}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, &DNSError{Name: short, Type: tname, Code: "5.1.2", Reason: "domain does not exist", Perm: true}
	default:
		return nil, &DNSError{Name: short, Type: tname, Code: "4.4.3",
			Reason: fmt.Sprintf("DNS server answered %s", dns.RcodeToString[resp.Rcode])}
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out, nil
}

// serverAddr returns Server, or the first nameserver of /etc/resolv.conf
// (127.0.0.1:53 if there is none).
func (r *Resolver) serverAddr() string {
	r.once.Do(func() {
		r.server = r.Server
		if r.server != "" {
			return
		}
		r.server = "127.0.0.1:53"
		if rc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(rc.Servers) > 0 {
			r.server = net.JoinHostPort(rc.Servers[0], rc.Port)
		}
	})
	return r.server
}

func withPort(name string, addrs []netip.Addr, port int) []target {
	out := make([]target, len(addrs))
	for i, a := range addrs {
		out[i] = target{name: name, addr: netip.AddrPortFrom(a, uint16(port)).String()}
	}
	return out
}

// MailDomain checks a mail domain as Postfix's reject_unknown_sender_domain
// and reject_unknown_recipient_domain do: it must have MX records, or
// else an address (A or AAAA). It returns nil for such a domain and a
// *DNSError otherwise: permanent for NXDOMAIN, no records and a null MX
// (Code 5.1.10, RFC 7505); temporary when DNS failed. An address literal
// ([192.0.2.1]) needs no DNS.
func (r *Resolver) MailDomain(ctx context.Context, domain string) error {
	if strings.HasPrefix(domain, "[") {
		return nil
	}
	// An SMTPUTF8 address's domain is asked for by its A-label (query).
	name := dns.Fqdn(domain)
	mxs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return err
	}
	if err := nullMX(domain, mxs); err != nil {
		return err
	}
	if slices.ContainsFunc(mxs, func(rr dns.RR) bool { _, ok := rr.(*dns.MX); return ok }) {
		return nil
	}
	_, err = r.addrs(ctx, name)
	return err
}

// nullMX returns the permanent error of a domain that publishes a null MX
// (RFC 7505): an MX record whose exchange is the root, ".". Any such
// record counts, whatever its preference and whatever other MX records
// there are, as Postfix's dns_lookup returns DNS_NULLMX for it: "MX 10 ."
// is no MX host, and no reason to fall back to the domain's own address.
func nullMX(name string, mxs []dns.RR) error {
	for _, rr := range mxs {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx == "." {
			return &DNSError{Name: name, Type: "MX", Code: "5.1.10",
				Reason: "domain does not accept mail (null MX, RFC 7505)", Perm: true}
		}
	}
	return nil
}

// NullMX reports a domain that publishes a null MX (RFC 7505).
func (e *DNSError) NullMX() bool { return e.Code == "5.1.10" }
