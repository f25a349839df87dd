package config

import (
	"net"
	"strings"
)

// interfaceAddrs expands a listen address whose host is a network
// interface's name, as E-MailRelay's --interface allows: "eth0:25" is
// every address of eth0 on port 25, "eth0-ipv4:25" and "eth0-ipv6:25"
// those of one family (IPv6 link-local ones with their zone). Any other
// address comes back as it is, as does the name of an interface without
// an address of the family asked for, so that listening on it fails
// naming it.
func interfaceAddrs(hostport string) []string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || net.ParseIP(host) != nil {
		return []string{hostport}
	}
	name, family := host, ""
	for _, f := range []string{"-ipv4", "-ipv6"} {
		if n, ok := strings.CutSuffix(host, f); ok {
			name, family = n, f
		}
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return []string{hostport}
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return []string{hostport}
	}
	var out []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		v4 := n.IP.To4() != nil
		if family == "-ipv4" && !v4 || family == "-ipv6" && v4 {
			continue
		}
		ip := n.IP.String()
		if n.IP.IsLinkLocalUnicast() && !v4 {
			ip += "%" + ifc.Name
		}
		out = append(out, net.JoinHostPort(ip, port))
	}
	if len(out) == 0 {
		return []string{hostport}
	}
	return out
}
