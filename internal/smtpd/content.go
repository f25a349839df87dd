package smtpd

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// crlfWriter writes message content with every line ending made CRLF: a
// bare LF or a bare CR becomes CRLF. What is stored, and so what is
// forwarded, can then never hold a line ending that some server downstream
// reads differently from us, which is how SMTP smuggling splits one message
// into two (CVE-2023-51766 and its kin). It also notes whether the content
// has 8-bit bytes.
type crlfWriter struct {
	w         io.Writer
	pendingCR bool
	last      byte
	eightBit  bool
	buf       []byte
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.buf = c.buf[:0]
	for _, b := range p {
		if b >= 0x80 {
			c.eightBit = true
		}
		switch {
		case b == '\r':
			if c.pendingCR {
				c.buf = append(c.buf, '\r', '\n')
			}
			c.pendingCR = true
			continue
		case b == '\n':
			c.buf = append(c.buf, '\r', '\n')
		case c.pendingCR:
			c.buf = append(c.buf, '\r', '\n', b)
		default:
			c.buf = append(c.buf, b)
		}
		c.pendingCR = false
		c.last = b
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the content with a line ending if it has none.
func (c *crlfWriter) Close() error {
	if c.pendingCR || (c.last != '\n' && c.last != 0) {
		_, err := c.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}

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
