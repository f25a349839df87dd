package remote

import (
	"bufio"
	"bytes"
	"io"
)

// dotWriter writes message text as SMTP's DATA carries it: a dot added at
// the start of every line that begins with one (RFC 5321 section 4.5.2),
// every bare LF made CRLF, and Close adds the final CRLF "." CRLF. Its
// output is exactly that of net/textproto's DotWriter (FuzzDotWriter
// compares them), which does all this one byte at a time through
// bufio.Writer.WriteByte; dotWriter finds line ends with IndexByte and
// passes the text between the octets it adds in one Write, so that CRLF
// text without leading dots goes out as it came.
type dotWriter struct {
	w     *bufio.Writer
	state int
	buf   []byte // ReadFrom's, kept for the connection's next message
}

// The states of textproto's dotWriter.
const (
	wBegin     = iota // nothing written yet
	wBeginLine        // after an LF
	wCR               // after a CR that may end a line
	wData             // within a line
)

// reset starts a new message.
func (d *dotWriter) reset(w *bufio.Writer) { d.w, d.state = w, wBegin }

// Write writes b, dot-stuffed, with bare LFs made CRLF. A CR keeps its
// place; as in textproto, a CR that follows a CR does not pair with the
// LF after it, which is then given its own CR.
func (d *dotWriter) Write(b []byte) (int, error) {
	run := 0 // b[run:i] goes out as it is
	i := 0
	for i < len(b) {
		switch d.state {
		case wBegin, wBeginLine:
			d.state = wData
			if b[i] == '.' {
				if err := d.insert(b[run:i], '.'); err != nil {
					return 0, err
				}
				run = i
			}
		case wCR:
			d.state = wData
			if b[i] == '\n' {
				d.state = wBeginLine
			}
			i++
			continue
		}
		// Within a line: up to the next LF, the state only follows
		// the CRs, and what ends it is the run of CRs before the LF
		// (each CR after a CR puts the state back to data).
		end := len(b)
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			end = i + j
		}
		crs := 0
		for k := end - 1; k >= i && b[k] == '\r'; k-- {
			crs++
		}
		if crs%2 == 1 {
			d.state = wCR
		}
		i = end
		if i == len(b) {
			break
		}
		if d.state == wData {
			// A bare LF: its CR goes first.
			if err := d.insert(b[run:i], '\r'); err != nil {
				return 0, err
			}
			run = i
		}
		d.state = wBeginLine
		i++
	}
	if _, err := d.w.Write(b[run:]); err != nil {
		return 0, err
	}
	return len(b), nil
}

// insert writes text as it is, then c.
func (d *dotWriter) insert(text []byte, c byte) error {
	if _, err := d.w.Write(text); err != nil {
		return err
	}
	return d.w.WriteByte(c)
}

// ReadFrom copies r through Write with a buffer the writer keeps, rather
// than one io.Copy would allocate for every message.
func (d *dotWriter) ReadFrom(r io.Reader) (int64, error) {
	if d.buf == nil {
		d.buf = make([]byte, 32<<10)
	}
	var n int64
	for {
		m, err := r.Read(d.buf)
		if m > 0 {
			if _, werr := d.Write(d.buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Close ends the last line if it has no line end, writes the final dot
// and flushes, as textproto's does.
func (d *dotWriter) Close() error {
	end := "\r\n.\r\n"
	switch d.state {
	case wCR:
		end = "\n.\r\n"
	case wBeginLine:
		end = ".\r\n"
	}
	if _, err := d.w.WriteString(end); err != nil {
		return err
	}
	return d.w.Flush()
}
