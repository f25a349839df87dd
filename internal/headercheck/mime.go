package headercheck

import (
	"bytes"
	"mime"
	"strings"
)

// MIME structure, as Postfix's mime_state follows it with its default
// disable_mime_input_processing = no: the headers of each MIME part
// (mime_header_checks) and of each attached message (nested_header_checks)
// are checked by header_checks too, both settings defaulting to
// $header_checks. So the most common header_checks rule of all, the one
// that refuses attachments by name ("/^Content-(Disposition|Type).*name
// *= *.*\.(exe|bat)/ REJECT"), refuses a message that attaches one, as it
// does behind Postfix. A part header that header_checks leaves alone is
// also given, line by line, to body_checks, which saw it before (where
// relaykeeper took MIME part headers for body lines), so that no rule
// written for that stops matching.

// Postfix's mime_nesting_limit and mime_boundary_length_limit: past them
// the structure is followed no deeper, and what is inside is body.
const (
	mimeNestingLimit  = 100
	mimeBoundaryLimit = 2048
)

// mimeState is what an applier knows of the message's MIME structure.
type mimeState struct {
	bounds []string // the open multipart boundaries, outermost first
	// partHeader: the header section being read is a MIME part's or an
	// attached message's, not the message's own.
	partHeader bool
	// What the Content-Type of the header section being read declares:
	// a multipart boundary, or an attached message (message/rfc822 or
	// message/global), whose header section follows this one's.
	boundary string
	nested   bool
	depth    int // nested header sections entered
}

// noteHeader takes a logical header of the section being read; a
// Content-Type sets what follows the section.
func (m *mimeState) noteHeader(key string) {
	name, value, ok := strings.Cut(key, ":")
	if !ok || !strings.EqualFold(strings.TrimSpace(name), "Content-Type") {
		return
	}
	mt, params, err := mime.ParseMediaType(strings.ReplaceAll(value, "\n", ""))
	if err != nil && mt == "" {
		return
	}
	m.boundary, m.nested = "", false
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if b := params["boundary"]; b != "" && len(b) <= mimeBoundaryLimit {
			m.boundary = b
		}
	case mt == "message/rfc822" || mt == "message/global":
		m.nested = true
	}
}

// sectionEnd is the end of a header section: it reports whether a header
// section (an attached message's) follows at once, instead of body.
func (m *mimeState) sectionEnd() (headerNext bool) {
	b, nested := m.boundary, m.nested
	m.boundary, m.nested = "", false
	if len(m.bounds)+m.depth >= mimeNestingLimit {
		m.partHeader = false
		return false
	}
	if b != "" {
		m.bounds = append(m.bounds, b)
	}
	if nested && b == "" {
		m.depth++
		m.partHeader = true
		return true
	}
	m.partHeader = false
	return false
}

// boundaryLine reports whether a body line is a boundary of an open
// multipart: "--" and the boundary (Postfix matches it as a prefix, as
// RFC 2046 lets a boundary line carry trailing blanks); a closing one,
// "--" after it, closes that multipart and any opened inside it. It
// reports whether a part's header section follows.
func (m *mimeState) boundaryLine(content []byte) (isBoundary, headerNext bool) {
	if len(m.bounds) == 0 || !bytes.HasPrefix(content, []byte("--")) {
		return false, false
	}
	for i := len(m.bounds) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(content[2:], []byte(m.bounds[i]))
		if !ok {
			continue
		}
		if bytes.HasPrefix(rest, []byte("--")) {
			m.bounds = m.bounds[:i]
			return true, false
		}
		m.bounds = m.bounds[:i+1]
		m.partHeader = true
		return true, true
	}
	return false, false
}
