package smtpd

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// receivedHeader is the trace header for one message (RFC 5321 section
// 4.4), in the form Postfix writes, which log tools know.
func receivedHeader(helo string, client net.Addr, domain, proto, id string, tlsInfo string, rcpts []string, now time.Time) string {
	var b strings.Builder
	ip := addrIP(client)
	// Postfix's form, "from HELO (NAME [IP])", with "unknown" for a client
	// without a verified name, so that header_checks written for Postfix's
	// headers (the seed guide's) match ours.
	fmt.Fprintf(&b, "Received: from %s (unknown [%s])\r\n", sanitize(helo), ip.String())
	if tlsInfo != "" {
		fmt.Fprintf(&b, "\t(%s)\r\n", tlsInfo)
	}
	fmt.Fprintf(&b, "\tby %s (relaykeeper) with %s id %s", domain, proto, id)
	if len(rcpts) == 1 {
		// Only for one recipient: more would tell each recipient who
		// else got the message.
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitize(rcpts[0]))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", now.Format(time.RFC1123Z))
	return b.String()
}

// sanitize keeps a client-supplied word from breaking the header.
func sanitize(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '(' || r == ')' {
			return '_'
		}
		return r
	}, s)
}
