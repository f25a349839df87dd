package main

import (
	"net"
	"net/netip"
	"strings"
)

// debugPeers is Postfix's debug_peer_list: networks match clients and
// upstreams by address, names match upstreams by host name or domain.
type debugPeers struct {
	nets  []netip.Prefix
	names []string
}

func newDebugPeers(entries []string) *debugPeers {
	d := &debugPeers{}
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

// client reports a client address on the list.
func (d *debugPeers) client(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range d.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// upstream reports an upstream ("host:port") on the list.
func (d *debugPeers) upstream(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		return d.client(ip)
	}
	for _, n := range d.names {
		if host == n || strings.HasSuffix(host, "."+n) {
			return true
		}
	}
	return false
}
