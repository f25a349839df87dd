package deliver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// countWriter counts what is written to it and keeps nothing.
type countWriter int64

func (n *countWriter) Write(p []byte) (int, error) {
	*n += countWriter(len(p))
	return len(p), nil
}

// Toward an upstream that does not offer 8BITMIME (RFC 6152), a message
// that came in as BODY=8BITMIME must not go as it is (section 3): as
// Postfix does (disable_mime_output_conversion = no), every MIME part
// that holds 8-bit text is sent quoted-printable instead, in parts nested
// as deep as they go, message/rfc822 included. Every other part and every
// header field goes through byte for byte. A message without MIME-Version
// cannot be labelled, and goes as it is, as Postfix sends it. Conversion
// breaks a DKIM signature over the body, as it does in Postfix.

// maxMIMEDepth bounds the nesting downgrade follows: a message nested
// deeper is sent as it is.
const maxMIMEDepth = 32

var errTooDeep = errors.New("MIME parts nested too deep")

// downgrade writes the message r reads to w with its 8-bit parts
// quoted-printable. On an error, what was written is not a whole message.
func downgrade(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return err
	}
	if !h.Has("Mime-Version") {
		if err := textproto.WriteHeader(w, h); err != nil {
			return err
		}
		_, err := io.Copy(w, br)
		return err
	}
	return downgradeEntity(w, h, br, 0)
}

// downgradeEntity writes one entity, header h and body, downgraded.
func downgradeEntity(w io.Writer, h textproto.Header, body io.Reader, depth int) error {
	if depth > maxMIMEDepth {
		return errTooDeep
	}
	h, body, err := downgradePart(h, body)
	if err != nil {
		return err
	}
	if err := textproto.WriteHeader(w, h); err != nil {
		return err
	}
	return downgradeBody(w, h, body, depth)
}

// downgradePart returns a leaf part's header and body as they go: 8-bit
// text quoted-printable. Containers (multipart, message) come back with a
// Content-Transfer-Encoding that RFC 2045 allows them, their body to be
// downgraded by downgradeBody.
func downgradePart(h textproto.Header, body io.Reader) (textproto.Header, io.Reader, error) {
	mt := mediaType(h)
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if strings.HasPrefix(mt, "multipart/") || mt == "message/rfc822" || mt == "message/global" {
		if cte == "8bit" || cte == "binary" {
			h = h.Copy()
			h.Set("Content-Transfer-Encoding", "7bit")
		}
		return h, body, nil
	}
	if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
		return h, body, nil // base64, quoted-printable: 7-bit already
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return h, nil, err
	}
	if !has8bit(raw) {
		return h, bytes.NewReader(raw), nil
	}
	h = h.Copy()
	var out bytes.Buffer
	if cte == "binary" {
		// Not lines of text: quoted-printable's line breaks would
		// change it.
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			out.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		out.WriteString(enc + "\r\n")
		h.Set("Content-Transfer-Encoding", "base64")
		return h, &out, nil
	}
	qw := quotedprintable.NewWriter(&out)
	if _, err := qw.Write(raw); err != nil {
		return h, nil, err
	}
	if err := qw.Close(); err != nil {
		return h, nil, err
	}
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	return h, &out, nil
}

// downgradeBody writes a body whose header is written already: a
// container's parts downgraded in turn, a leaf's as downgradePart left it.
func downgradeBody(w io.Writer, h textproto.Header, body io.Reader, depth int) error {
	mt := mediaType(h)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		_, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		boundary := params["boundary"]
		if boundary == "" {
			return errors.New("a multipart part without a boundary")
		}
		mr := textproto.NewMultipartReader(body, boundary)
		mw := textproto.NewMultipartWriter(w)
		if err := mw.SetBoundary(boundary); err != nil {
			return err
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if depth+1 > maxMIMEDepth {
				return errTooDeep
			}
			ph, pbody, err := downgradePart(p.Header, p)
			if err != nil {
				return err
			}
			pw, err := mw.CreatePart(ph)
			if err != nil {
				return err
			}
			if err := downgradeBody(pw, ph, pbody, depth+1); err != nil {
				return err
			}
		}
		return mw.Close()
	case mt == "message/rfc822" || mt == "message/global":
		br := bufio.NewReader(body)
		inner, err := textproto.ReadHeader(br)
		if err != nil {
			return err
		}
		return downgradeEntity(w, inner, br, depth+1)
	}
	_, err := io.Copy(w, body)
	return err
}

// mediaType is h's lower-case media type; text/plain when it has none or
// one that does not parse (RFC 2045 section 5.2).
func mediaType(h textproto.Header) string {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain"
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return "text/plain"
	}
	return mt
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// downgraded returns content (the message as it is to go: prefix, then
// the claim's content from its start) downgraded to 7 bits, read as it is
// converted, its size, and what ends the conversion; ok is false when the
// message cannot be converted (MIME that does not parse), and it then goes
// as it is, as Postfix sends what it cannot convert. A first pass, which keeps nothing, finds out and counts the
// size, so that a conversion never fails half-way through a transaction.
func (s *Scheduler) downgraded(c *spool.Claim, prefix string, content io.Reader) (r io.Reader, size int64, stop func(), ok bool) {
	var n countWriter
	again, _, err := c.Content()
	if err == nil {
		err = downgrade(&n, io.MultiReader(strings.NewReader(prefix), again))
		again.Close()
	}
	if err != nil {
		s.log.Warn("8-bit message cannot be converted for an upstream without 8BITMIME; sent as it is",
			"id", c.ID(), "err", err)
		return nil, 0, nil, false
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(downgrade(pw, content))
	}()
	// stop ends the conversion, read to its end or not (Send may stop
	// at a refused MAIL), before the claim's content goes.
	stop = func() {
		pr.Close()
		<-done
	}
	return pr, int64(n), stop, true
}
