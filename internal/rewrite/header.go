package rewrite

import (
	"bytes"
	"io"
	"net/mail"
	"strings"
)

// Postfix's header address classes (header_opts.c): which header fields
// hold sender addresses and which recipient addresses.
var headerClass = map[string]byte{
	"from": 's', "sender": 's', "resent-from": 's', "resent-sender": 's', "return-path": 's',
	"errors-to": 's', "return-receipt-to": 's', "disposition-notification-to": 's',
	"to": 'r', "cc": 'r', "bcc": 'r', "resent-to": 'r', "resent-cc": 'r', "resent-bcc": 'r',
	"reply-to": 'r', "resent-reply-to": 'r', "apparently-to": 'r',
}

// maxHeader bounds the header section held to be rewritten; a longer one
// passes unchanged.
const maxHeader = 1 << 20

// HeaderWriter rewrites the addresses in a message's header section on
// its way to W: the fields of Postfix's header_sender and
// header_recipient classes, mapped as the envelope's are. The header
// section is held until its end (the empty line, or Close); the body
// passes straight through. A field whose addresses do not parse, or that
// no table changes, is written as it came, byte for byte; in one that
// changes, each address is replaced where it stands, so the display names
// and the folding stay.
type HeaderWriter struct {
	W       io.Writer
	C       *Canonical
	head    []byte
	through bool
}

// Write holds the header section, then passes the body on.
func (h *HeaderWriter) Write(p []byte) (int, error) {
	if h.through {
		return h.W.Write(p)
	}
	h.head = append(h.head, p...)
	end := headerEnd(h.head)
	if end < 0 && len(h.head) <= maxHeader {
		return len(p), nil
	}
	if end >= 0 {
		h.rewrite(end)
	} // else too long to hold: as it is
	h.through = true
	_, err := h.W.Write(h.head)
	h.head = nil
	return len(p), err
}

// Close writes a header section that had no body after it.
func (h *HeaderWriter) Close() error {
	if h.through {
		return nil
	}
	h.rewrite(len(h.head))
	h.through = true
	_, err := h.W.Write(h.head)
	h.head = nil
	return err
}

// headerEnd is the offset of the header section's end (after the empty
// line's CRLF), or -1 if it has not come yet.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// rewrite rewrites the fields in h.head[:end].
func (h *HeaderWriter) rewrite(end int) {
	var out []byte
	changed := false
	rest := h.head[end:]
	for sec := h.head[:end]; len(sec) > 0; {
		n := fieldLen(sec)
		field := sec[:n]
		sec = sec[n:]
		if f, ok := h.field(field); ok {
			field, changed = f, true
		}
		out = append(out, field...)
	}
	if changed {
		h.head = append(out, rest...)
	}
}

// fieldLen is the length of the first logical field in b: its line and
// the continuation lines after it.
func fieldLen(b []byte) int {
	n := 0
	for {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			return len(b)
		}
		n += i + 1
		if n >= len(b) || (b[n] != ' ' && b[n] != '\t') {
			return n
		}
	}
}

// field rewrites one field, or reports false if it stays as it is.
func (h *HeaderWriter) field(raw []byte) ([]byte, bool) {
	colon := bytes.IndexByte(raw, ':')
	if colon <= 0 {
		return nil, false
	}
	class := headerClass[strings.ToLower(string(bytes.TrimRight(raw[:colon], " \t")))]
	if class == 0 {
		return nil, false
	}
	value := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(raw[colon+1:]))
	list, err := mail.ParseAddressList(value)
	if err != nil {
		return nil, false
	}
	text := string(raw)
	changed := false
	from := colon + 1 // addresses come in order: each is looked for after the last
	for _, a := range list {
		to := h.C.RecipientAddr(a.Address)
		if class == 's' {
			to = h.C.SenderAddr(a.Address)
		}
		i := indexAddr(text[from:], a.Address)
		if i < 0 {
			continue // written some other way (quoted, encoded): left alone
		}
		i += from
		from = i + len(a.Address)
		if to == a.Address {
			continue
		}
		text = text[:i] + to + text[from:]
		from = i + len(to)
		changed = true
	}
	return []byte(text), changed
}

// indexAddr finds addr in s, ignoring ASCII case, where it stands as a
// whole address: not inside a longer one, nor in a quoted display name.
func indexAddr(s, addr string) int {
	for i := 0; i+len(addr) <= len(s); i++ {
		if !strings.EqualFold(s[i:i+len(addr)], addr) {
			continue
		}
		before, after := byte(' '), byte(' ')
		if i > 0 {
			before = s[i-1]
		}
		if j := i + len(addr); j < len(s) {
			after = s[j]
		}
		if strings.IndexByte("< \t,:\n", before) >= 0 && strings.IndexByte("> \t,;(\r\n", after) >= 0 {
			return i
		}
	}
	return -1
}
