package hostport

import (
	"net"
	"strings"
)

// FilterAddr is the address ("host:port") of a content filter written
// either as Postfix writes content_filter and FILTER, transport:nexthop
// ("scan:localhost:10025", "smtp:[127.0.0.1]:10025", "scan:[::1]:10025"),
// whose transport name it drops, or as a bare host[:port]
// ("127.0.0.1:10025", "localhost:10025"). The port defaults to 25.
func FilterAddr(spec string) string {
	hop := strings.TrimSpace(spec)
	if name, rest, ok := strings.Cut(hop, ":"); ok && isTransportName(name) && rest != "" && !isPort(rest) {
		hop = rest
	}
	host, port, err := net.SplitHostPort(hop)
	if err != nil {
		host, port = hop, "25"
	}
	if p, ok := smtpServices[strings.ToLower(port)]; ok {
		port = p
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// isTransportName reports a master.cf service name: letters, digits, '-'
// and '_' (a host name with dots, or an IP address, is none).
func isTransportName(s string) bool {
	return s != "" && strings.Trim(strings.ToLower(s), "abcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// smtpServices are the service names Postfix users write for SMTP ports.
var smtpServices = map[string]string{"smtp": "25", "submission": "587", "submissions": "465", "smtps": "465"}

// isPort reports a port: a number or an SMTP service name.
func isPort(s string) bool {
	_, named := smtpServices[strings.ToLower(s)]
	return named || (s != "" && len(s) <= 5 && strings.Trim(s, "0123456789") == "")
}
