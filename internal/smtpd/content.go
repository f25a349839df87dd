package smtpd

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/net/idna"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// receivedHeader is the trace header for one message (RFC 5321 section
// 4.4), in the form Postfix writes, which log tools know.
// comments are the lines in parentheses after "from" (the TLS cipher, the
// login).
func receivedHeader(helo, name string, client net.Addr, domain, proto, id string, comments, rcpts []string, now time.Time) string {
	var b strings.Builder
	ip := addrIP(client)
	// Postfix's form, "from HELO (NAME [IP])", with "unknown" for a client
	// without a verified name, so that header_checks written for Postfix's
	// headers (the seed guide's) match ours.
	if name == "" {
		name = "unknown"
	}
	// An IPv6 client is an address literal, "[IPv6:2001:db8::1]" (RFC
	// 5321 sections 4.1.3 and 4.4's TCP-info), as Postfix writes it.
	lit := ip.String()
	if ip.Is6() {
		lit = "IPv6:" + lit
	}
	fmt.Fprintf(&b, "Received: from %s (%s [%s])\r\n", sanitize(aLabels(helo)), name, lit)
	for _, c := range comments {
		fmt.Fprintf(&b, "\t(%s)\r\n", c)
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

// aLabels is a HELO name with U-labels (RFC 6531 allows them, and EHLO
// takes them) in its A-label form, "xn--bcher-kva.example": the Received
// header is the relay's own, and UTF-8 in it would make a message of
// ASCII need SMTPUTF8 (RFC 6532), so that one sent with the SMTPUTF8
// parameter bounced (5.6.7) toward an upstream without it, and one sent
// without carried 8-bit octets in a header it may not have. A name that
// has no A-label form keeps its ASCII, with "?" for the rest.
func aLabels(helo string) string {
	if ascii(helo) {
		return helo
	}
	if a, err := idna.Punycode.ToASCII(helo); err == nil && ascii(a) {
		return a
	}
	return strings.Map(func(r rune) rune {
		if r >= 0x80 {
			return '?'
		}
		return r
	}, helo)
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

// clientReader remembers the error reading the client's message text, so
// that it is never mistaken for a storage failure (and a full disk is
// never answered as if the client had gone; see TestStorageFailureIs451).
type clientReader struct {
	r   io.Reader
	err error
}

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// sizeLimit fails the message text once it is longer than the size limit
// (--size), counted as Postfix's message_size_limit counts it: the octets
// after dot-unstuffing, CRLFs included, up to the final dot's line. A
// message of exactly the limit passes. The failure is go-smtp's
// ErrDataTooLarge, which go-smtp answers (552 5.3.4) after the final dot
// for DATA. BDAT chunks are counted before they are read (bdatsize.go).
type sizeLimit struct {
	r    io.Reader
	left int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left < 0 {
		return 0, smtp.ErrDataTooLarge
	}
	return n, err
}

// maxHeldHeader bounds the header section headerStamp looks through for
// Message-ID and Date; past it, a message passes unchanged.
const maxHeldHeader = 1 << 20

// headerStamp adds the Message-ID and Date header fields a message lacks
// at the end of its header section, as Postfix's cleanup does for the mail
// it accepts (RFC 5322 section 3.6 requires a Date; a Message-ID is what
// receivers and the enforcer's rules expect). Its input is CRLF text.
// Header fields pass on as soon as they are whole (what is added goes
// after all of them), so only a line cut between two Writes is held; when
// the header section has not ended within maxHeldHeader octets nothing is
// added. The body streams through.
type headerStamp struct {
	w          io.Writer
	id, domain string
	now        time.Time

	held  []byte // the start of a line, cut off at the end of a Write
	seen  int    // octets of the header section taken so far
	done  bool
	field bool // a header field has begun: a blank-led line continues it
	msgID bool
	date  bool
	hops  int // Received: header fields seen
	// id is the first Message-ID field's value as far as it has been
	// read (a folded field continues on the next lines), or the one
	// added; inID says the field being read is that one.
	idValue []byte
	inID    bool
}

// maxLoggedMessageID bounds the Message-ID the mail log shows: one line's
// worth (RFC 5322's 998 octets), whatever a client sends.
const maxLoggedMessageID = 998

// MessageID returns the message's Message-ID as the mail log shows it
// (Postfix's cleanup logs message-id=): the first Message-ID field's value
// without its surrounding white space, or the one added; "" when the
// header section was too long to look through.
func (h *headerStamp) MessageID() string {
	return string(bytes.TrimSpace(h.idValue))
}

// noteID adds a piece of the Message-ID field's value, without its line
// ending, within maxLoggedMessageID.
func (h *headerStamp) noteID(v []byte) {
	v = bytes.TrimLeft(bytes.TrimRight(v, "\r\n"), " \t")
	if len(h.idValue) > 0 && len(v) > 0 && len(h.idValue) < maxLoggedMessageID {
		// Unfolding (RFC 5322 section 2.2.3) keeps the white space.
		h.idValue = append(h.idValue, ' ')
	}
	h.idValue = append(h.idValue, v[:min(len(v), max(0, maxLoggedMessageID-len(h.idValue)))]...)
}

// hopcountLimit is Postfix's hopcount_limit: a message with this many
// Received: header fields, ours included, is refused (Postfix's cleanup
// counts those only: Delivered-To: is local delivery's own loop check),
// which ends a mail loop (a route or a forwarder that leads back to the
// relay) after that many turns instead of never.
const hopcountLimit = 50

// tooManyHops is Postfix's reply to a message past hopcountLimit.
var tooManyHops = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Error: too many hops"}

// tooManyHops reports whether the message, with our own Received header,
// has passed hopcountLimit hops.
func (h *headerStamp) tooManyHops() bool { return h.hops+1 >= hopcountLimit }

func (h *headerStamp) Write(p []byte) (int, error) {
	if h.done {
		return h.w.Write(p)
	}
	h.seen += len(p)
	from, pos := 0, 0 // p[from:pos] is whole header fields not yet written
	for {
		i := bytes.IndexByte(p[pos:], '\n')
		if i < 0 {
			break
		}
		end := pos + i + 1
		line := p[pos:end]
		if len(h.held) > 0 {
			h.held = append(h.held, line...)
			line = h.held
		}
		if !headerLine(line) || !h.field && (line[0] == ' ' || line[0] == '\t') {
			// The blank line that ends the header section, or a line
			// that is no header field, or a continuation with no field
			// before it to continue (it would continue our Received:):
			// the body starts here, as in Postfix's cleanup.
			sep := ""
			if len(line) > 2 {
				sep = "\r\n"
			}
			err := h.writeAll(p[from:pos], h.added(sep), line, p[end:])
			h.done, h.held = true, nil
			return len(p), err
		}
		h.field = true
		name, value, _ := bytes.Cut(line, []byte(":"))
		name = bytes.TrimRight(name, " \t")
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if h.inID {
				h.noteID(line)
			}
		case bytes.EqualFold(name, []byte("Message-ID")):
			h.inID = !h.msgID
			if h.inID {
				h.noteID(value)
			}
			h.msgID = true
		case bytes.EqualFold(name, []byte("Date")):
			h.date, h.inID = true, false
		case bytes.EqualFold(name, []byte("Received")):
			h.hops++
			h.inID = false
		default:
			h.inID = false
		}
		if len(h.held) > 0 {
			// pos is 0: the line began in an earlier Write.
			if _, err := h.w.Write(h.held); err != nil {
				return 0, err
			}
			h.held, from = h.held[:0], end
		}
		pos = end
	}
	if err := h.writeAll(p[from:pos]); err != nil {
		return 0, err
	}
	h.held = append(h.held, p[pos:]...)
	if h.seen > maxHeldHeader {
		h.done = true
		_, err := h.w.Write(h.held)
		h.held = nil
		return len(p), err
	}
	return len(p), nil
}

// added is the header fields the message lacks, then sep.
func (h *headerStamp) added(sep string) []byte {
	var b []byte
	if !h.msgID {
		b = fmt.Appendf(b, "Message-ID: <%s.%s@%s>\r\n", h.now.UTC().Format("20060102150405"), h.id, h.domain)
		h.noteID(b[len("Message-ID: "):])
	}
	if !h.date {
		b = fmt.Appendf(b, "Date: %s\r\n", h.now.Format(time.RFC1123Z))
	}
	return append(b, sep...)
}

// writeAll writes each non-empty piece.
func (h *headerStamp) writeAll(pieces ...[]byte) error {
	for _, b := range pieces {
		if len(b) == 0 {
			continue
		}
		if _, err := h.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// headerLine reports whether a line is a header field or the continuation
// of one (RFC 5322 section 2.2). A field's name may be followed by blanks
// before its colon: RFC 5322 section 4.5.3's obsolete syntax, which a
// reader must accept, and a header field to Postfix (is_header), to
// header_checks and to the canonical maps. A line of white space only
// continues the field too (obs-FWS), as Postfix's cleanup and
// header_checks read it: taking it for the end of the header section would
// turn the fields after it into body text.
func headerLine(line []byte) bool {
	if line[0] == ' ' || line[0] == '\t' {
		return true
	}
	return table.IsHeader(string(line))
}

// Close ends a message that was all header section: what it lacks goes at
// its end.
func (h *headerStamp) Close() error {
	if h.done {
		return nil
	}
	h.done = true
	err := h.writeAll(h.held, h.added(""))
	h.held = nil
	return err
}

// closeContent ends the client's content: the last line ending, then the
// header fields added at the end of the header section.
func closeContent(cw *crlf.Writer, h *headerStamp) error {
	if err := cw.Close(); err != nil {
		return err
	}
	return h.Close()
}
