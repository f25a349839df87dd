package remote

import (
	"bufio"
	"bytes"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
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
	w       *bufio.Writer
	state   int
	scratch []byte // copyText's, for text that needs octets added
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

// nextAdd scans b from i in state s to the first place where an octet is
// added: it returns that place, the octet ('.' before a line's leading
// dot, '\r' before a bare LF), where to scan on and the state there; or
// len(b), 0 and the state at the end. A CR keeps its place; as in
// textproto, a CR that follows a CR does not pair with the LF after it,
// which is then given its own CR.
func nextAdd(b []byte, i, s int) (at int, add byte, resume, state int) {
	for i < len(b) {
		switch s {
		case wBegin, wBeginLine:
			s = wData
			if b[i] == '.' {
				return i, '.', i, s
			}
		case wCR:
			s = wData
			if b[i] == '\n' {
				s = wBeginLine
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
			s = wCR
		}
		if end == len(b) {
			break
		}
		if s == wData {
			return end, '\r', end + 1, wBeginLine
		}
		s, i = wBeginLine, end+1
	}
	return len(b), 0, len(b), s
}

// Write writes b, dot-stuffed, with bare LFs made CRLF.
func (d *dotWriter) Write(b []byte) (int, error) {
	run, i := 0, 0 // b[run:] is written as it is up to the next added octet
	for {
		at, add, resume, s := nextAdd(b, i, d.state)
		d.state = s
		if add == 0 {
			break
		}
		if _, err := d.w.Write(b[run:at]); err != nil {
			return 0, err
		}
		if err := d.w.WriteByte(add); err != nil {
			return 0, err
		}
		run, i = at, resume
	}
	if _, err := d.w.Write(b[run:]); err != nil {
		return 0, err
	}
	return len(b), nil
}

// copyText writes r's text with its line endings made CRLF by crlf's
// rule first. What the listener stores is CRLF text already, but a filter
// that edits the content file in place, or a message put into the spool
// by hand or by E-MailRelay, may hold a bare CR, which this writer (like
// textproto's) keeps; a server downstream may read "<CR>.<CR><LF>" as the
// end of the text and what follows as commands (SMTP smuggling).
//
// It reads r straight into the free space of the bufio.Writer: text that
// needs no octet added or changed (most text: CRLF lines, no leading dot)
// is then written where it already is. Text that needs dots added is
// copied out first, to a buffer kept for the connection's next message;
// crlf writes text it changes from a buffer of its own. (Not io.Copy: it
// would prefer the body's WriteTo, and io.MultiReader's allocates 32 KiB.)
func (d *dotWriter) copyText(r io.Reader) error {
	text := crlf.NewWriter(d)
	for {
		if d.w.Available() < 4<<10 {
			if err := d.w.Flush(); err != nil {
				return err
			}
		}
		free := d.w.AvailableBuffer()[:d.w.Available()]
		m, err := r.Read(free)
		if m > 0 {
			chunk := free[:m]
			if _, add, _, _ := nextAdd(chunk, 0, d.state); add != 0 {
				// Added octets would overwrite text not yet written.
				d.scratch = append(d.scratch[:0], chunk...)
				chunk = d.scratch
			}
			if _, werr := text.Write(chunk); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return text.Close()
		}
		if err != nil {
			return err
		}
	}
}

// Close ends the last line if it has no line end, writes the final dot
// and flushes, as textproto's does.
func (d *dotWriter) Close() error {
	if err := d.finish(); err != nil {
		return err
	}
	return d.w.Flush()
}

// finish is Close without the flush, for commands to follow the dot in
// the same write.
func (d *dotWriter) finish() error {
	end := "\r\n.\r\n"
	switch d.state {
	case wCR:
		end = "\n.\r\n"
	case wBeginLine:
		end = ".\r\n"
	}
	_, err := d.w.WriteString(end)
	return err
}
