package smtpd

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestReceivedIPv6AddressLiteral: an IPv6 client's address in the
// Received field is an address literal, "[IPv6:2001:db8::1]" (RFC 5321
// section 4.4's TCP-info), as Postfix writes it; it was "[2001:db8::1]".
// An IPv4 client, and an IPv4-mapped one, stay "[192.0.2.1]".
func TestReceivedIPv6AddressLiteral(t *testing.T) {
	for _, tc := range []struct {
		ip, want string
	}{
		{"2001:db8::1", "(unknown [IPv6:2001:db8::1])"},
		{"::1", "(unknown [IPv6:::1])"},
		{"192.0.2.1", "(unknown [192.0.2.1])"},
		{"::ffff:192.0.2.1", "(unknown [192.0.2.1])"},
	} {
		h := receivedHeader("client.example", "", &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 25}, "relay.test", "ESMTP", "ID", nil, nil, time.Unix(0, 0))
		if first, _, _ := strings.Cut(h, "\r\n"); !strings.HasSuffix(first, tc.want) {
			t.Errorf("client %s: %q; want it to end %q", tc.ip, first, tc.want)
		}
	}
}
