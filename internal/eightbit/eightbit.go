// Package eightbit converts 8-bit MIME messages to 7 bits. Toward an
// upstream that does not offer 8BITMIME (RFC 6152), a message
// with 8-bit content must not go as it is (section 3). As Postfix does
// (disable_mime_output_conversion = no), each MIME leaf part that holds
// 8-bit octets is sent encoded instead: quoted-printable for text in CRLF
// lines, base64 for anything else (a lone CR or LF, a NUL, a non-text
// type), in multiparts nested as deep as they go and in message/rfc822; a
// message/global part is a leaf of its own (RFC 6532 section 3.5).
// Everything else goes byte for byte: the header fields, the preamble and
// epilogue, the boundary lines, every part without 8-bit octets. A message
// with nothing to convert (all 7-bit, or without MIME-Version: it cannot
// be labelled, and Postfix sends it as it is) goes unchanged. Conversion
// breaks a DKIM signature over the body, as it does in Postfix.
//
// The walk is line by line and keeps no part in memory. It runs three
// times: a plan (which leaves need what), a count (the SIZE to declare),
// and the conversion that is sent.
package eightbit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// maxMIMEDepth bounds the nesting followed: deeper parts go as they are.
const maxMIMEDepth = 32

// leafAction is what the conversion does with one leaf part.
type leafAction uint8

const (
	leafAsIs leafAction = iota
	leafQP
	leafBase64
	// Labelled quoted-printable or base64 yet holding 8-bit octets: the
	// label stays, and what readers would decode stays the same. An 8-bit
	// octet goes as =XX in quoted-printable (which readers take raw), and
	// is dropped from base64 (whose readers skip what is not base64).
	leafEscapeQP
	leafDrop8
)

// downgrader walks a message once; plan is filled by the planning walk
// and followed, leaf by leaf in the same order, by the writing walks.
type downgrader struct {
	r    *bufio.Reader
	w    io.Writer // nil while planning
	err  error     // the first write error: the walk stops
	plan []leafAction
	leaf int
	// junk8: a preamble or epilogue holds 8-bit octets. Mail readers
	// ignore that text; it goes with each such octet as '?'.
	junk8  bool
	bounds []string // the enclosing multiparts' boundaries, innermost last
	// lineStart: the next read begins a line (a long line comes in
	// pieces, and only a whole line can be a delimiter line);
	// pieceStart: the last one did.
	lineStart, pieceStart bool
}

// planDowngrade reads the message and returns what each leaf needs, and
// whether anything needs converting at all.
func planDowngrade(r io.Reader) ([]leafAction, bool, error) {
	d := &downgrader{r: bufio.NewReaderSize(r, 64<<10), lineStart: true}
	if err := d.message(); err != nil {
		return nil, false, err
	}
	if d.junk8 {
		return d.plan, true, nil
	}
	for _, a := range d.plan {
		if a != leafAsIs {
			return d.plan, true, nil
		}
	}
	return d.plan, false, nil
}

// downgrade writes the message r reads to w converted as plan says.
func downgrade(w io.Writer, r io.Reader, plan []leafAction) error {
	d := &downgrader{r: bufio.NewReaderSize(r, 64<<10), w: w, plan: plan, lineStart: true}
	if err := d.message(); err != nil {
		return err
	}
	return d.err
}

func (d *downgrader) message() error {
	h, raw, _, err := d.header()
	if err != nil {
		return err
	}
	if !h.Has("Mime-Version") {
		d.write(raw)
		_, _, err := d.body(leafAsIs)
		return err
	}
	_, err = d.entity(h, raw, 0)
	return err
}

// write writes p while converting; planning writes nothing.
func (d *downgrader) write(p []byte) {
	if d.w != nil && d.err == nil && len(p) > 0 {
		_, d.err = d.w.Write(p)
	}
}

// line reads the next line, or a piece of a long one, valid until the
// next read; a delimiter line is a copy the caller may keep. delim is the
// index in bounds of the multipart it is a delimiter line of (-1 if none),
// and closing whether it is the closing one ("--B--"). At the end of the
// message line is what is left, and err io.EOF.
func (d *downgrader) line() (line []byte, delim int, closing bool, err error) {
	if d.err != nil {
		return nil, -1, false, d.err
	}
	start := d.lineStart
	d.pieceStart = start
	line, err = d.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		d.lineStart = false
		return line, -1, false, nil
	}
	d.lineStart = true
	if !start {
		return line, -1, false, err
	}
	if delim, closing = d.delimiter(line); delim >= 0 {
		line = bytes.Clone(line)
	}
	return line, delim, closing, err
}

// delimiter says which enclosing multipart's delimiter line a whole line
// is: "--" boundary, "--" for the closing one, then white space (RFC 2046
// section 5.1.1). The innermost wins.
func (d *downgrader) delimiter(line []byte) (delim int, closing bool) {
	if len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return -1, false
	}
	s := strings.TrimRight(string(line[2:]), " \t\r\n")
	for i := len(d.bounds) - 1; i >= 0; i-- {
		// A boundary may not end in a blank (RFC 2046 section 5.1.1),
		// but one that does is read as mail readers read it.
		b := strings.TrimRight(d.bounds[i], " \t")
		switch s {
		case b:
			return i, false
		case b + "--":
			return i, true
		}
	}
	return -1, false
}

// header reads a header section, up to and including its empty line, as
// it came (raw) and parsed. A delimiter line before the empty line ends
// the part there: it comes back as end, not in raw.
func (d *downgrader) header() (h textproto.Header, raw, end []byte, err error) {
	for {
		line, delim, _, err := d.line()
		if delim >= 0 {
			return h, raw, line, nil
		}
		raw = append(raw, line...)
		blank := d.pieceStart && (string(line) == "\r\n" || string(line) == "\n")
		if err != nil && err != io.EOF {
			return h, raw, nil, err
		}
		if blank || err == io.EOF {
			return parseHeader(raw), raw, nil, nil
		}
	}
}

// parseHeader parses a header section for its fields; a line that is no
// field (no colon, not a continuation) is left out of the parse, as mail
// readers skip it, and stays in the raw header that goes on.
func parseHeader(raw []byte) textproto.Header {
	if h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw))); err == nil {
		return h
	}
	var kept []byte
	keep := false // the field the continuation lines belong to is kept
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		switch {
		case len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			keep = true // the end of the header
		default:
			i := bytes.IndexByte(line, ':')
			keep = i > 0 && fieldName(line[:i])
		}
		if keep {
			kept = append(kept, line...)
		}
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(kept)))
	return h
}

// fieldName reports a header field name: printable ASCII, no colon (RFC
// 5322 section 2.2).
func fieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// transferEncoding is a part's Content-Transfer-Encoding, lower case,
// without a comment ("8bit (utf-8)").
func transferEncoding(h textproto.Header) string {
	v := h.Get("Content-Transfer-Encoding")
	if i := strings.IndexAny(v, "( \t;"); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// entity converts one entity whose header h (raw as it came) is read; it
// returns the delimiter line of an enclosing multipart that ended it, not
// written, or nil at the end of the message.
func (d *downgrader) entity(h textproto.Header, raw []byte, depth int) ([]byte, error) {
	mt, params := mediaType(h)
	cte := transferEncoding(h)
	identity := cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary"
	switch {
	case depth < maxMIMEDepth && strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		d.write(d.containerHeader(h, raw, cte))
		return d.multipart(params["boundary"], depth)
	case depth < maxMIMEDepth && mt == "message/rfc822" && identity:
		// message/global is not walked into: its header may hold UTF-8
		// that no inner part's encoding reaches, and unlike message/rfc822
		// it may itself take base64 (RFC 6532 section 3.5), so it is a leaf.
		d.write(d.containerHeader(h, raw, cte))
		ih, iraw, end, err := d.header()
		if err != nil || end != nil {
			d.write(iraw)
			return end, err
		}
		return d.entity(ih, iraw, depth+1)
	}
	// A leaf.
	if d.w == nil {
		act, end, err := d.body(leafAsIs)
		switch {
		case !identity && act != leafAsIs && cte == "quoted-printable":
			act = leafEscapeQP
		case !identity && act != leafAsIs && cte == "base64":
			act = leafDrop8
		case !identity && act != leafAsIs:
			act = leafBase64 // another encoding: only base64 carries it
		case act == leafQP && !strings.HasPrefix(mt, "text/"):
			act = leafBase64
		}
		d.plan = append(d.plan, act)
		return end, err
	}
	act := leafAsIs
	if d.leaf < len(d.plan) {
		act = d.plan[d.leaf]
	}
	d.leaf++
	if act == leafAsIs || act == leafEscapeQP || act == leafDrop8 {
		d.write(raw)
	} else {
		d.write(withCTE(h, map[leafAction]string{leafQP: "quoted-printable", leafBase64: "base64"}[act]))
	}
	_, end, err := d.body(act)
	return end, err
}

// containerHeader is a multipart's or message's header as it goes: when
// its parts are converted, "8bit" or "binary" says 7bit (RFC 2045 section
// 6.4).
func (d *downgrader) containerHeader(h textproto.Header, raw []byte, cte string) []byte {
	if d.w == nil || cte != "8bit" && cte != "binary" {
		return raw
	}
	return withCTE(h, "7bit")
}

// withCTE is the header h, as it goes, with its Content-Transfer-Encoding
// set to cte where the field stood, or added after the last field when it
// had none, as Postfix's conversion does. textproto's Set would put it
// first, and a message's own header must begin with its trace fields: the
// relay's Received: field goes at the beginning of the content (RFC 5321
// section 4.4).
func withCTE(h textproto.Header, cte string) []byte {
	field := []byte("Content-Transfer-Encoding: " + cte + "\r\n")
	var b bytes.Buffer
	done := false
	for fs := h.Fields(); fs.Next(); {
		raw, err := fs.Raw()
		switch {
		case !strings.EqualFold(fs.Key(), "Content-Transfer-Encoding"):
			if err != nil {
				raw = []byte(fs.Key() + ": " + fs.Value() + "\r\n")
			}
			b.Write(raw)
		case !done:
			b.Write(field)
			done = true
		}
	}
	if !done {
		b.Write(field)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// multipart converts a multipart body: the preamble, each part after its
// delimiter line, and the epilogue, up to a delimiter line of an
// enclosing multipart (returned, not written) or the end.
func (d *downgrader) multipart(boundary string, depth int) ([]byte, error) {
	d.bounds = append(d.bounds, boundary)
	mine := len(d.bounds) - 1
	defer func() { d.bounds = d.bounds[:mine] }()
	line, delim, closing, err := d.copyToDelimiter() // the preamble
	for line != nil && err == nil && delim == mine && !closing {
		d.write(line)
		h, raw, end, herr := d.header()
		switch {
		case herr != nil:
			return nil, herr
		case end != nil:
			d.write(raw) // a part cut off in its header
		default:
			if end, err = d.entity(h, raw, depth+1); err != nil {
				return nil, err
			}
		}
		if end == nil {
			return nil, nil // the end of the message, unclosed
		}
		line = end
		delim, closing = d.delimiter(end)
	}
	if line == nil || err != nil || delim != mine {
		return line, err // the end, or an enclosing multipart's line
	}
	d.write(line) // our closing line; then the epilogue
	for {
		line, delim, _, err = d.copyToDelimiter()
		if line == nil || err != nil || delim != mine {
			return line, err
		}
		d.write(line) // our boundary again, after the close: text
	}
}

// copyToDelimiter copies a preamble or an epilogue, lines up to the next
// delimiter line, which it returns unwritten (nil at the end of the
// message), with 8-bit octets as '?'.
func (d *downgrader) copyToDelimiter() ([]byte, int, bool, error) {
	for {
		line, delim, closing, err := d.line()
		if delim >= 0 {
			return line, delim, closing, nil
		}
		if eightBitIn(line) {
			d.junk8 = true
			if d.w != nil {
				line = bytes.Clone(line)
				for i, c := range line {
					if c >= 0x80 {
						line[i] = '?'
					}
				}
			}
		}
		d.write(line)
		if err == io.EOF {
			return nil, -1, false, nil
		}
		if err != nil {
			return nil, -1, false, err
		}
	}
}

// body reads a leaf's body up to a delimiter line of an enclosing
// multipart (returned, not written) or the end. While planning it returns
// what the body needs; while converting it writes the body as act says.
// The line break before a delimiter line belongs to the delimiter (RFC
// 2046 section 5.1.1): it is not encoded, and goes as CRLF after the
// encoded body.
func (d *downgrader) body(act leafAction) (leafAction, []byte, error) {
	var enc io.WriteCloser
	switch {
	case d.w == nil:
	case act == leafEscapeQP || act == leafDrop8:
		enc = &octetFilter{w: writerFunc(d.write), escape: act == leafEscapeQP}
	case act == leafQP:
		enc = quotedprintable.NewWriter(writerFunc(d.write))
	case act == leafBase64:
		enc = base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: writerFunc(d.write)})
	}
	eightBit, binary := false, false
	var heldBuf [2]byte
	var held []byte // the last line break, which may be the delimiter's
	finish := func(end []byte) []byte {
		if enc == nil {
			d.write(held)
			return end
		}
		if f, ok := enc.(*octetFilter); ok {
			f.Write(held) // copied as it came, 8-bit octets aside
			return end
		}
		if end == nil && len(held) > 0 {
			// The end of the message: the line break is the body's
			// own. Quoted-printable writes it as the CRLF that ends
			// the text; base64 encodes it, and its line ends below.
			enc.Write(held)
			enc.Close()
			if act == leafBase64 {
				d.write([]byte("\r\n"))
			}
			return end
		}
		enc.Close()
		d.write([]byte("\r\n"))
		return end
	}
	for {
		line, delim, _, err := d.line()
		if delim >= 0 {
			return plan(eightBit, binary), finish(line), nil
		}
		if err != nil && err != io.EOF {
			return leafAsIs, nil, err
		}
		if len(line) == 0 && err == io.EOF {
			return plan(eightBit, binary), finish(nil), nil
		}
		d.emit(enc, held)
		held = nil
		content := line
		if n := len(line); d.lineStart && n > 0 && line[n-1] == '\n' {
			k := n - 1
			if k > 0 && line[k-1] == '\r' {
				k--
			}
			content, held = line[:k], heldBuf[:copy(heldBuf[:], line[k:])]
		}
		for _, c := range content {
			switch {
			case c >= 0x80:
				eightBit = true
			case c == 0 || c == '\r' || c == '\n':
				binary = true // a NUL, a lone CR: not lines of text
			}
		}
		d.emit(enc, content)
		if err == io.EOF {
			return plan(eightBit, binary), finish(nil), nil
		}
	}
}

func eightBitIn(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// octetFilter passes 7-bit octets on as they are, and an 8-bit one as
// =XX (escape) or not at all.
type octetFilter struct {
	w      io.Writer
	escape bool
}

func (f *octetFilter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		switch {
		case c < 0x80:
			b = append(b, c)
		case f.escape:
			b = append(b, '=', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		}
	}
	f.w.Write(b)
	return len(p), nil
}

func (f *octetFilter) Close() error { return nil }

// writerFunc writes through d.write.
type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

// emit writes body bytes, through the encoder if there is one.
func (d *downgrader) emit(enc io.WriteCloser, p []byte) {
	if len(p) == 0 {
		return
	}
	if enc != nil {
		enc.Write(p)
		return
	}
	d.write(p)
}

// plan is what a leaf with such octets needs.
func plan(eightBit, binary bool) leafAction {
	switch {
	case !eightBit:
		return leafAsIs
	case binary:
		return leafBase64
	}
	return leafQP
}

// lineWrapper breaks base64 into lines of 76 characters (RFC 2045
// section 6.8).
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), 76-l.col)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		p, l.col = p[k:], l.col+k
		if l.col == 76 && len(p) > 0 {
			l.w.Write([]byte("\r\n"))
			l.col = 0
		}
	}
	return n, nil
}

// mediaType is h's lower-case media type and parameters; text/plain when
// it has none or one that does not parse (RFC 2045 section 5.2).
func mediaType(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "text/plain", nil
	}
	return mt, params
}

// countWriter counts what is written to it and keeps nothing.
type countWriter int64

func (n *countWriter) Write(p []byte) (int, error) {
	*n += countWriter(len(p))
	return len(p), nil
}

// Converted returns the message that open reads, converted to 7 bits as
// it is read, with its size (for SIZE=) and what ends the conversion; ok
// is false when there is nothing to convert, and the message then goes
// as it is. open is called three times (a plan, a count, the conversion),
// so it must give the same message each time.
func Converted(open func() (io.ReadCloser, error)) (r io.Reader, size int64, stop func(), ok bool, err error) {
	again := func(f func(io.Reader) error) error {
		body, err := open()
		if err != nil {
			return err
		}
		defer body.Close()
		return f(body)
	}
	var plan []leafAction
	var convert bool
	err = again(func(r io.Reader) (err error) {
		plan, convert, err = planDowngrade(r)
		return err
	})
	var n countWriter
	if err == nil && convert {
		err = again(func(r io.Reader) error { return downgrade(&n, r, plan) })
	}
	if err != nil || !convert {
		return nil, 0, nil, false, err
	}
	body, err := open()
	if err != nil {
		return nil, 0, nil, false, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(downgrade(pw, body, plan))
	}()
	// stop ends the conversion, read to its end or not (the upstream may
	// refuse MAIL), before the caller lets the content go.
	stop = func() {
		pr.Close()
		<-done
		body.Close()
	}
	return pr, int64(n), stop, true, nil
}
