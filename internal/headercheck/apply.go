package headercheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// maxLine is the longest line, and the longest logical header, held in
// memory whole. A longer body line is checked in pieces of maxLine bytes
// (longBodyLine), as Postfix checks one in pieces of line_length_limit,
// 2048 bytes: maxLine is 512 of those, so each of Postfix's pieces lies
// within one of ours and a rule that matches one of them matches here too.
// A longer header is still checked, on its first headerSizeLimit bytes,
// before any of it is written; the rest is passed through (or dropped:
// IGNORE, REPLACE) as it comes.
const maxLine = 1 << 20

// postfixLineLengthLimit is Postfix's line_length_limit: its cleanup(8)
// gets a longer line in pieces of this many bytes, and body_checks look at
// each piece as if it were a line.
const postfixLineLengthLimit = 2048

// headerSizeLimit is how much of a logical header header_checks see:
// Postfix's header_size_limit (102400), beyond which cleanup(8) discards
// the excess before its header_checks. The message itself is not cut.
const headerSizeLimit = 102400

// Apply reads a message from r, with CRLF line ends as stored (bare LF
// works too), and writes it to w with the actions of the tables carried
// out: header_checks on each logical header of the primary header section,
// body_checks on each line after it. A header that is kept unchanged is
// written as it was read, folding and all; so is every line no rule
// changed, so that with no matching rules the output is the input, byte
// for byte.
//
// Within a table the first matching rule decides, once per header or body
// line. After REJECT, DISCARD, REDIRECT or PASS nothing more is checked
// (as in Postfix's cleanup(8)), but the rest of the message is still read
// and written, so the caller's input is consumed. Empty body lines are
// never looked up (Postfix: "empty lines never match").
//
// The header section ends at the first empty line, or at the first line
// that is neither a header nor a continuation line: that line is then the
// first body line (Postfix inserts an empty line before it; Apply does
// not change the message). The error is a read or write error.
func (c *Checks) Apply(r io.Reader, w io.Writer) (Result, error) {
	a := &applier{out: bufio.NewWriterSize(w, 64<<10)}
	if c != nil && c.header != nil {
		a.hdr = c.header.t
	}
	if c != nil && c.body != nil {
		a.body = c.body.t
	}
	var err error
	if a.hdr == nil && a.body == nil {
		err = a.copyRest(r)
	} else {
		a.in = newLineReader(r)
		err = a.run()
	}
	if ferr := a.out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("headercheck: writing message: %w", ferr)
	}
	return a.res, err
}

// applier is the state of one Apply.
type applier struct {
	hdr, body *table.Table // nil: no such checks
	in        *lineReader
	out       *bufio.Writer
	res       Result
	stopped   bool // REJECT, DISCARD, REDIRECT or PASS: nothing more is checked

	inBody bool
	// The logical header being collected: its lines as read, and the
	// unfolded text that is matched (the lines without their line ends,
	// joined with "\n").
	have bool
	raw  []byte
	key  []byte
	// skipping: the header being read is too long to hold; it was
	// checked on its start (tooLong), and its continuation lines are
	// written as they come, or dropped if dropping (IGNORE, REPLACE).
	skipping, dropping bool
	// mime follows the MIME structure, for header_checks on the headers
	// of parts and attached messages (mime.go).
	mime mimeState
	// piece is longBodyLine's buffer, kept for the next long line.
	piece []byte
}

func (a *applier) write(p []byte) error {
	if _, err := a.out.Write(p); err != nil {
		return fmt.Errorf("headercheck: writing message: %w", err)
	}
	return nil
}

func (a *applier) writeString(s string) error {
	if _, err := a.out.WriteString(s); err != nil {
		return fmt.Errorf("headercheck: writing message: %w", err)
	}
	return nil
}

// copyRest copies the rest of the input unchanged.
func (a *applier) copyRest(r io.Reader) error {
	if _, err := a.out.ReadFrom(r); err != nil {
		return fmt.Errorf("headercheck: copying message: %w", err)
	}
	return nil
}

func (a *applier) run() error {
	for {
		line, long, rerr := a.in.next()
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("headercheck: reading message: %w", rerr)
		}
		if len(line) == 0 {
			return a.endHeader()
		}
		var err error
		if !a.inBody {
			err = a.headerLine(line, long)
		} else {
			err = a.bodyLine(line, long)
		}
		if err != nil {
			return err
		}
		if rerr == io.EOF {
			return a.endHeader()
		}
		// Once nothing more can change, the rest is copied as it is.
		if a.stopped || a.inBody && a.body == nil && (a.hdr == nil || len(a.mime.bounds) == 0) {
			if err := a.endHeader(); err != nil {
				return err
			}
			return a.copyRest(a.in.r)
		}
	}
}

// headerLine takes one physical line of the header section.
func (a *applier) headerLine(line []byte, long bool) error {
	content, _ := splitEOL(line)
	continuation := (line[0] == ' ' || line[0] == '\t') && (a.have || a.skipping)
	switch {
	case long:
		// Too long to hold: the header is checked on its start now.
		switch {
		case continuation && a.skipping:
			if !a.dropping {
				if err := a.write(line); err != nil {
					return err
				}
			}
		case continuation:
			a.have = false
			if err := a.tooLong(append(a.raw, line...), append(append(a.key, '\n'), content...)); err != nil {
				return err
			}
		default:
			if err := a.endHeader(); err != nil {
				return err
			}
			a.skipping, a.dropping = false, false
			if !table.IsHeader(string(line[:min(len(line), 1000)])) {
				// The body's first line: body_checks see it too.
				a.bodyStarts()
				return a.bodyLine(line, true)
			}
			if err := a.tooLong(line, content); err != nil {
				return err
			}
		}
		return a.copyLineRest(a.dropping)
	case len(content) == 0:
		// The empty line that ends the header section; an attached
		// message's header section may follow.
		if err := a.endHeader(); err != nil {
			return err
		}
		a.skipping, a.dropping = false, false
		a.inBody = !a.sectionEnd()
		return a.write(line)
	case continuation:
		if a.skipping {
			if a.dropping {
				return nil
			}
			return a.write(line)
		}
		if len(a.raw)+len(line) > maxLine {
			a.have = false
			return a.tooLong(append(a.raw, line...), append(append(a.key, '\n'), content...))
		}
		a.raw = append(a.raw, line...)
		if len(a.key) < headerSizeLimit {
			a.key = append(append(a.key, '\n'), content...)
			a.key = a.key[:min(len(a.key), headerSizeLimit)]
		}
		return nil
	case table.IsHeader(string(content)):
		if err := a.endHeader(); err != nil {
			return err
		}
		a.skipping, a.dropping, a.have = false, false, true
		a.raw = append(a.raw[:0], line...)
		a.key = append(a.key[:0], content[:min(len(content), headerSizeLimit)]...)
		return nil
	default:
		// Neither a header nor a continuation: the body starts here.
		if err := a.endHeader(); err != nil {
			return err
		}
		a.skipping, a.dropping = false, false
		a.bodyStarts()
		return a.bodyLine(line, false)
	}
}

// tooLong checks a header too long to hold (more than maxLine) on the
// first headerSizeLimit bytes of key, as Postfix's cleanup(8) checks what
// header_size_limit leaves of it, before any of it is written: prefix is
// what was read of it so far. The rest of the header is then passed
// through as it comes (skipping), or dropped (dropping) when a rule
// IGNOREs or REPLACEs it.
func (a *applier) tooLong(prefix, key []byte) error {
	a.skipping, a.dropping = true, false
	if a.stopped || a.hdr == nil {
		return a.write(prefix)
	}
	k := fieldKey(key[:min(len(key), headerSizeLimit)])
	a.mime.noteHeader(k)
	value, ok := a.hdr.Lookup(k)
	if !ok {
		return a.write(prefix)
	}
	act, err := parseAction(value, true)
	if err != nil {
		a.res.Problems = append(a.res.Problems, fmt.Sprintf("header_checks result %s for %s: %v", quote(value), describe("header", k), err))
		return a.write(prefix)
	}
	eol := "\r\n"
	if i := bytes.IndexByte(prefix, '\n'); i >= 0 {
		eol = eolOf(prefix[:i+1])
	}
	switch act.kind {
	case actIgnore, actStrip:
		a.record(act, "header", k)
		a.dropping = true
		return nil
	case actReplace:
		a.dropping = true
		return a.writeString(fold(act.text, eol) + eol)
	case actPrepend:
		if err := a.writeString(fold(act.text, eol) + eol); err != nil {
			return err
		}
	default:
		a.record(act, "header", k)
	}
	return a.write(prefix)
}

// sectionEnd ends a header section and reports whether another (an
// attached message's) follows at once; MIME structure is followed only
// for header_checks.
func (a *applier) sectionEnd() bool {
	return a.hdr != nil && a.mime.sectionEnd()
}

// bodyStarts ends the header section at a line that is no header: any
// attached message's header section it announced is empty, ended by it.
func (a *applier) bodyStarts() {
	for a.sectionEnd() {
	}
	a.inBody = true
}

// endHeader checks the header collected so far and writes it out.
func (a *applier) endHeader() error {
	if !a.have {
		return nil
	}
	a.have = false
	if a.stopped || a.hdr == nil {
		return a.write(a.raw)
	}
	key := fieldKey(a.key)
	a.mime.noteHeader(key)
	value, ok := a.hdr.Lookup(key)
	if !ok {
		return a.keepHeader()
	}
	act, err := parseAction(value, true)
	if err != nil {
		a.res.Problems = append(a.res.Problems, fmt.Sprintf("header_checks result %s for %s: %v", quote(value), describe("header", key), err))
		return a.write(a.raw)
	}
	// Lines written in place of the header end as its lines do.
	firstEOL := eolOf(a.raw[:bytes.IndexByte(a.raw, '\n')+1])
	_, lastEOL := splitEOL(a.raw)
	switch act.kind {
	case actIgnore, actStrip:
		a.record(act, "header", key)
		return nil
	case actReplace:
		return a.writeString(fold(act.text, firstEOL) + lastEOL)
	case actPrepend:
		if err := a.writeString(fold(act.text, firstEOL) + firstEOL); err != nil {
			return err
		}
	default:
		a.record(act, "header", key)
	}
	return a.keepHeader()
}

// fieldKey is the text header_checks match for a logical header: as it
// came, but without white space between the field name and its colon
// ("Subject : x", RFC 5322 section 4.5.3's obsolete syntax), which
// Postfix's cleanup drops before its header_checks see the field. The
// message itself is not changed.
func fieldKey(key []byte) string {
	colon := bytes.IndexByte(key, ':')
	if colon < 0 {
		return string(key)
	}
	name := bytes.TrimRight(key[:colon], " \t")
	if len(name) == colon {
		return string(key)
	}
	return string(name) + string(key[colon:])
}

// keepHeader writes the header collected as it came. A MIME part's header
// goes through body_checks too, line by line, as before relaykeeper read
// MIME structure (mime.go).
func (a *applier) keepHeader() error {
	if !a.mime.partHeader || a.body == nil || a.stopped {
		return a.write(a.raw)
	}
	raw := a.raw
	for len(raw) > 0 {
		n := bytes.IndexByte(raw, '\n') + 1
		if n == 0 {
			n = len(raw)
		}
		if err := a.bodyCheck(raw[:n]); err != nil {
			return err
		}
		raw = raw[n:]
	}
	return nil
}

// bodyLine takes one line after the header section. A MIME boundary
// starts a part, whose header section comes next.
func (a *applier) bodyLine(line []byte, long bool) error {
	if long {
		return a.longBodyLine(line)
	}
	if content, _ := splitEOL(line); a.hdr != nil && !a.stopped {
		if boundary, headerNext := a.mime.boundaryLine(content); boundary {
			a.inBody = !headerNext
		}
	}
	return a.bodyCheck(line)
}

// longBodyLine takes a body line longer than maxLine, whose start the
// line reader returned, and reads the rest of it: body_checks look at each
// maxLine bytes of it as if they were a line, as Postfix's do at each
// line_length_limit bytes. A REJECT in the middle of a 100 MB line is not
// dodged; an action that changes the line (IGNORE, REPLACE, PREPEND)
// changes that piece, as in Postfix. At most two pieces are held at once.
func (a *applier) longBodyLine(start []byte) error {
	piece := append(a.piece[:0], start...)
	defer func() { a.piece = piece[:0] }()
	for ended := false; ; {
		for len(piece) > maxLine {
			if err := a.bodyCheck(piece[:maxLine]); err != nil {
				return err
			}
			piece = append(piece[:0], piece[maxLine:]...)
		}
		if ended {
			return a.bodyCheck(piece)
		}
		frag, err := a.in.r.ReadSlice('\n')
		piece = append(piece, frag...)
		switch err {
		case nil, io.EOF:
			ended = true
		case bufio.ErrBufferFull:
		default:
			return fmt.Errorf("headercheck: reading message: %w", err)
		}
	}
}

// bodyCheck applies body_checks to one line.
func (a *applier) bodyCheck(line []byte) error {
	content, eol := splitEOL(line)
	if a.stopped || a.body == nil || len(content) == 0 {
		return a.write(line)
	}
	text := string(content)
	value, ok := a.body.Lookup(text)
	if !ok {
		return a.write(line)
	}
	act, err := parseAction(value, false)
	if err != nil {
		a.res.Problems = append(a.res.Problems, fmt.Sprintf("body_checks result %s for %s: %v", quote(value), describe("body", text), err))
		return a.write(line)
	}
	switch act.kind {
	case actIgnore, actStrip:
		a.record(act, "body", text)
		return nil
	case actReplace:
		return a.writeString(fold(act.text, "") + eol)
	case actPrepend:
		nl := eol
		if nl == "" {
			nl = "\r\n"
		}
		if err := a.writeString(fold(act.text, "") + nl); err != nil {
			return err
		}
	default:
		a.record(act, "body", text)
	}
	return a.write(line)
}

// record notes what an action that leaves the line alone decided.
func (a *applier) record(act action, where, line string) {
	logText := func() string {
		if act.text == "" {
			return describe(where, line)
		}
		return describe(where, line) + ": " + table.Printable(act.text)
	}
	switch act.kind {
	case actReject:
		a.res.Verdict, a.res.Match = Reject, describe(where, line)
		a.res.Code, a.res.Enhanced, a.res.Text = rejectReply(act.text)
		a.stopped = true
	case actDiscard:
		a.res.Verdict, a.res.Match = Discard, describe(where, line)
		a.res.Code, a.res.Enhanced, a.res.Text = 0, "", table.Printable(act.text)
		a.stopped = true
	case actHold:
		// The first HOLD counts, and never after a DISCARD.
		if a.res.Verdict == Accept {
			a.res.Verdict, a.res.Match, a.res.Text = Hold, describe(where, line), table.Printable(act.text)
		}
	case actWarn:
		a.res.Warnings = append(a.res.Warnings, logText())
	case actInfo, actStrip:
		a.res.Info = append(a.res.Info, logText())
	case actPass:
		a.res.Info = append(a.res.Info, logText())
		a.stopped = true
	case actFilter:
		a.res.Filter = act.text
	case actRedirect:
		a.res.Redirect = act.text
		a.stopped = true
	case actBCC:
		if !slices.Contains(a.res.BCC, act.text) {
			a.res.BCC = append(a.res.BCC, act.text)
		}
	}
}

// describe names a matched line for the log, as cleanup(8) does.
func describe(where, line string) string {
	return where + " " + table.Printable(clip(line))
}

// fold turns the text of REPLACE or PREPEND into lines. A "\n" in it can
// only come from a $n substitution of a folded header; it stays a line
// break (written as nl) where the next line is a proper continuation line,
// and becomes a space elsewhere, so that a replacement can never end the
// header section or start a new header. With nl "" every "\n" becomes a
// space.
func fold(text, nl string) string {
	if !strings.Contains(text, "\n") {
		return text
	}
	parts := strings.Split(text, "\n")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		if nl != "" && p != "" && (p[0] == ' ' || p[0] == '\t') && strings.TrimLeft(p, " \t") != "" {
			b.WriteString(nl)
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

// splitEOL splits a line into its content and its line end: "\r\n", "\n",
// or "" for a last line without one.
func splitEOL(line []byte) (content []byte, eol string) {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return line[:len(line)-2], "\r\n"
	case bytes.HasSuffix(line, []byte("\n")):
		return line[:len(line)-1], "\n"
	}
	return line, ""
}

// eolOf is the line end of a line, CRLF when it has none.
func eolOf(line []byte) string {
	if _, eol := splitEOL(line); eol != "" {
		return eol
	}
	return "\r\n"
}

// copyLineRest copies the rest of a line that was too long to hold, or
// with drop reads it and writes nothing.
func (a *applier) copyLineRest(drop bool) error {
	for {
		frag, err := a.in.r.ReadSlice('\n')
		if drop {
			frag = nil
		}
		if werr := a.write(frag); werr != nil {
			return werr
		}
		switch err {
		case nil, io.EOF:
			return nil
		case bufio.ErrBufferFull:
			continue
		default:
			return fmt.Errorf("headercheck: reading message: %w", err)
		}
	}
}

// lineReader reads lines of at most maxLine bytes into a reused buffer.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line with its line end, valid until the next call.
// A line longer than maxLine comes back cut, with long set: the caller
// copies the rest with copyLineRest. At the end of the input it returns
// the last line (perhaps without a line end, perhaps empty) and io.EOF.
func (lr *lineReader) next() (line []byte, long bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.r.ReadSlice('\n')
		lr.buf = append(lr.buf, frag...)
		if err != bufio.ErrBufferFull {
			return lr.buf, false, err
		}
		if len(lr.buf) > maxLine {
			return lr.buf, true, nil
		}
	}
}
