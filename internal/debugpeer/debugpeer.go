// Package debugpeer is Postfix's debug_peer_list: the clients and upstreams
// whose SMTP sessions are traced line by line in the diagnostic log.
package debugpeer

import (
	"net"
	"net/netip"
	"strings"
)

// List is a debug_peer_list: networks match clients and upstreams by
// address, names match upstreams by host name or domain.
type List struct {
	nets  []netip.Prefix
	names []string
}

// New reads the list's entries: networks ("192.0.2.0/24"), addresses, and
// domain names (".example.org" and "example.org" alike match the domain
// and its subdomains). It returns nil for an empty list: trace nothing.
func New(entries []string) *List {
	d := &List{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			d.nets = append(d.nets, p.Masked())
		} else if a, err := netip.ParseAddr(e); err == nil {
			d.nets = append(d.nets, netip.PrefixFrom(a, a.BitLen()))
		} else if e != "" {
			d.names = append(d.names, strings.ToLower(strings.TrimPrefix(e, ".")))
		}
	}
	if len(d.nets) == 0 && len(d.names) == 0 {
		return nil
	}
	return d
}

// Client reports a client address on the list.
func (d *List) Client(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range d.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Upstream reports an upstream ("host:port") on the list.
func (d *List) Upstream(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		return d.Client(ip)
	}
	for _, n := range d.names {
		if host == n || strings.HasSuffix(host, "."+n) {
			return true
		}
	}
	return false
}
