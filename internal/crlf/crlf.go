// Package crlf gives message content the one line ending the spool stores
// and SMTP sends: CRLF. Every bare LF and every bare CR becomes CRLF.
//
// One rule for every way content arrives (an SMTP client, a content
// filter's output, a milter's header value, a local submission): what is
// stored, and so what is forwarded, can then never hold a line ending that
// a server downstream reads differently from us, which is how SMTP
// smuggling splits one message into two (CVE-2023-51766 and its kin). A
// lone CR is therefore not kept as it came, as sendmail's pickup would
// keep it: it ends a line.
package crlf

import "io"

// Writer passes content on with its line endings made CRLF. Close ends
// content that does not end with a line ending with one; a CR held at the
// end of one Write waits for the next to see whether an LF follows.
type Writer struct {
	w         io.Writer
	pendingCR bool
	last      byte // the last byte written other than a pending CR
	any       bool // anything has been written
	eightBit  bool
	buf       []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes p with its line endings made CRLF. It reports len(p) on
// success, whatever it wrote.
func (c *Writer) Write(p []byte) (int, error) {
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
		c.last, c.any = b, true
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends non-empty content with CRLF if it has no line ending at its
// end. It does not close the underlying writer.
func (c *Writer) Close() error {
	if c.pendingCR || (c.any && c.last != '\n') {
		c.pendingCR, c.last = false, '\n'
		_, err := c.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}

// EightBit reports whether the content written so far has a byte above
// 0x7F.
func (c *Writer) EightBit() bool { return c.eightBit }

// Bytes returns b with its line endings made CRLF, for a header value or a
// whole message held in memory. Unlike Close, it adds no line ending that
// b does not end with; a CR at the end becomes CRLF.
func Bytes(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32+2)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}
