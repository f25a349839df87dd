// Package crlf gives message content the one line ending the spool stores
// and SMTP sends: CRLF. Every bare LF and every bare CR becomes CRLF, but
// a run of CRs directly before an LF is one line ending: text whose CRLFs
// were made CRLF again ("a" CR CR LF, from a client that converts twice)
// keeps its lines, and its header stays a header, as with Postfix.
//
// One rule for every way content arrives (an SMTP client, a content
// filter's output, a milter's header value, a local submission): what is
// stored, and so what is forwarded, can then never hold a line ending that
// a server downstream reads differently from us, which is how SMTP
// smuggling splits one message into two (CVE-2023-51766 and its kin). A
// lone CR is therefore not kept as it came, as sendmail's pickup would
// keep it: it ends a line.
package crlf

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Writer passes content on with its line endings made CRLF. Close ends
// content that does not end with a line ending with one; a CR held at the
// end of one Write waits for the next to see whether an LF follows.
//
// Content that is CRLF already, as SMTP brings it, goes through as it
// came: Write checks it with bulk scans and passes p on whole, without a
// copy; only content with a bare LF or CR is rewritten.
type Writer struct {
	w         io.Writer
	pendingCR int  // CRs held at the end of the last Write
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
	if len(p) == 0 {
		return 0, nil
	}
	if !c.eightBit && hasHigh(p) {
		c.eightBit = true
	}
	q := p
	prefix := 0 // line endings for the CRs held from the last Write, first
	if c.pendingCR > 0 {
		more := countCR(q)
		switch {
		case more == len(q):
			// Still CRs only: whether they end at an LF is for the
			// next Write to see.
			c.pendingCR += more
			return len(p), nil
		case q[more] == '\n':
			prefix, q = 1, q[more+1:]
		default:
			prefix, q = c.pendingCR+more, q[more:]
		}
		c.pendingCR = 0
	}
	// Whether the CRs at the end end a line alone or with an LF is for
	// the next Write to see.
	hold := 0
	for hold < len(q) && q[len(q)-1-hold] == '\r' {
		hold++
	}
	q = q[:len(q)-hold]
	out := q
	if clean := isCRLF(q); prefix > 0 || !clean {
		c.buf = c.buf[:0]
		for range prefix {
			c.buf = append(c.buf, '\r', '\n')
		}
		if clean {
			c.buf = append(c.buf, q...)
		} else {
			c.buf = normalize(c.buf, q)
		}
		out = c.buf
	}
	c.pendingCR = hold
	if len(out) == 0 {
		return len(p), nil
	}
	c.last, c.any = out[len(out)-1], true
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// isCRLF reports whether every CR in b is followed by an LF and every LF
// preceded by a CR.
func isCRLF(b []byte) bool {
	pairs := 0
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\r')
		if i < 0 {
			break
		}
		off += i + 1
		if off == len(b) || b[off] != '\n' {
			return false
		}
		off++
		pairs++
	}
	return bytes.Count(b, []byte{'\n'}) == pairs
}

// countCR is the number of CRs b starts with.
func countCR(b []byte) int {
	n := 0
	for n < len(b) && b[n] == '\r' {
		n++
	}
	return n
}

// normalize appends b to dst with every bare LF made CRLF, a run of CRs
// followed by an LF made one CRLF, and every other CR made CRLF (a CR at
// the very end too).
func normalize(dst, b []byte) []byte {
	cr, lf := -1, -1 // the next CR and LF at or after pos, found lazily
	for pos := 0; pos < len(b); {
		if cr < pos {
			if cr = bytes.IndexByte(b[pos:], '\r'); cr < 0 {
				cr = len(b)
			} else {
				cr += pos
			}
		}
		if lf < pos {
			if lf = bytes.IndexByte(b[pos:], '\n'); lf < 0 {
				lf = len(b)
			} else {
				lf += pos
			}
		}
		k := min(cr, lf)
		dst = append(dst, b[pos:k]...)
		if k == len(b) {
			break
		}
		pos = k + 1
		if k == cr {
			run := countCR(b[k:])
			if k+run < len(b) && b[k+run] == '\n' {
				pos = k + run + 1 // CR... LF: one line ending
			} else {
				for range run - 1 {
					dst = append(dst, '\r', '\n')
				}
				pos = k + run
			}
		}
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// hasHigh reports whether b has a byte above 0x7F, eight bytes at a time.
func hasHigh(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// Close ends non-empty content with CRLF if it has no line ending at its
// end. It does not close the underlying writer.
func (c *Writer) Close() error {
	if c.pendingCR > 0 || (c.any && c.last != '\n') {
		n := max(c.pendingCR, 1) // each CR held ends a line
		c.pendingCR, c.last = 0, '\n'
		_, err := c.w.Write(bytes.Repeat([]byte("\r\n"), n))
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
	return normalize(make([]byte, 0, len(b)+len(b)/32+2), b)
}
