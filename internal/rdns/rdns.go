// Package rdns finds a client's forward-confirmed host name, as Postfix's
// smtpd does for "client=name[ip]": the PTR records of the address, then
// the addresses of each name, which must include the client's. A name that
// does not lead back to the address is anyone's to write (the owner of the
// address's reverse zone chooses it), so only a confirmed one is used, in
// the Received header, the mail log and the welcomelist's host-name
// patterns; otherwise the client is "unknown".
//
// Lookups are bounded by a short timeout: a slow DNS server delays a
// client's greeting by at most that, and makes it unknown.
package rdns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DefaultTimeout bounds one client's whole lookup when Resolver.Timeout is
// zero.
const DefaultTimeout = 5 * time.Second

// maxNames bounds the PTR names tried, as a reverse zone may list many.
const maxNames = 5

// Resolver looks up confirmed names. Its zero value uses the system's
// resolver (and /etc/hosts, as Postfix does through the C library) with
// DefaultTimeout. It is safe for concurrent use once configured.
type Resolver struct {
	// Server, if set, is the DNS server to ask ("ip:port") instead of the
	// system's.
	Server string
	// Timeout bounds one client's lookup; DefaultTimeout if zero.
	Timeout time.Duration
}

func (r *Resolver) resolver() *net.Resolver {
	if r.Server == "" {
		return net.DefaultResolver
	}
	server := r.Server
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// Names is what one client's lookup found: Name, its forward-confirmed
// host name ("" if none); Reverse, the first of its PTR names whether it
// leads back or not (Postfix's reverse_client_name, "" if none); and
// TempFail, that DNS failed for a while (a timeout, SERVFAIL) where an
// answer would have been needed.
type Names struct {
	Name, Reverse string
	TempFail      bool
}

// ClientName returns the forward-confirmed host name of ip, lower case and
// without the trailing dot, or "" if there is none: no PTR record, no name
// among them whose A or AAAA records include ip, or no answer in time.
func (r *Resolver) ClientName(ctx context.Context, ip netip.Addr) string {
	return r.Lookup(ctx, ip).Name
}

// Lookup finds ip's names, as ClientName does, and also the first PTR
// name and whether DNS failed temporarily, for Postfix's
// reject_unknown_reverse_client_hostname and
// reject_unknown_client_hostname.
func (r *Resolver) Lookup(ctx context.Context, ip netip.Addr) Names {
	var out Names
	if !ip.IsValid() {
		return out
	}
	ip = ip.Unmap()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := r.resolver()
	names, err := res.LookupAddr(ctx, ip.String())
	if err != nil && len(names) == 0 {
		out.TempFail = temporary(err)
		return out
	}
	for i, name := range names {
		if i == maxNames {
			break
		}
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if !validName(name) {
			continue
		}
		if out.Reverse == "" {
			out.Reverse = name
		}
		addrs, err := res.LookupNetIP(ctx, network(ip), name)
		if err != nil {
			out.TempFail = out.TempFail || temporary(err)
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				out.Name, out.TempFail = name, false
				return out
			}
		}
	}
	return out
}

// temporary reports a DNS failure that is not an answer: a timeout, a
// server failure, no server to ask. "No such name" is an answer.
func temporary(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) {
		return !de.IsNotFound
	}
	return true
}

func network(ip netip.Addr) string {
	if ip.Is4() {
		return "ip4"
	}
	return "ip6"
}

// validName is Postfix's valid_hostname with the numeric-address check: the
// name must be letters, digits, '-' and '.' in labels of at most 63, and must
// not look like an address (a PTR of "1.2.3.4" would pass for one).
func validName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	allDigits := true
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c == '-', c == '_':
				allDigits = false
			default:
				return false
			}
		}
	}
	return !allDigits
}
