package enforce

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"
)

// EncapsulatedHeader marks a message that EncapsulateMessage made. A refusal of
// such a message is never answered by encapsulating it again.
const EncapsulatedHeader = "X-Relaykeeper-Encapsulated"

// ErrEncapsulated is EncapsulateMessage's error for an original that is itself an
// encapsulated message.
var ErrEncapsulated = errors.New("enforce: the message is encapsulated already")

// maxHeaderBytes bounds the header ParseFromHeader and Encapsulate read.
const maxHeaderBytes = 1 << 20

// EncapsulateOptions say who the encapsulated message is from and to, and
// what its covering note tells the recipient.
type EncapsulateOptions struct {
	// From is the relay's own address, "postmaster@relay.example"; it may
	// carry a display name. Upstream must accept it: the relay's domain
	// needs SPF (and better DKIM) for the relay.
	From string
	// To is the original recipient.
	To string
	// OriginalFrom is the original From header's value, which becomes
	// Reply-To so that replies reach the author; "" to take it from the
	// original's header.
	OriginalFrom string
	// OriginalSender is the original envelope sender ("" for <>).
	OriginalSender string
	// Reason is the upstream's reply refusing the original.
	Reason string
	// Client is the IP of the client that submitted the original.
	Client netip.Addr
	// Now is the Date (zero: time.Now()).
	Now time.Time
	// MessageID returns a Message-ID, with or without angle brackets;
	// nil: random hex at From's domain.
	MessageID func() string
}

// EncapsulateMessage writes to w a new message from opts.From to opts.To that
// carries original, whole and byte for byte, as a message/rfc822
// attachment, after a short text/plain note saying why: the upstream
// refused the original for a reason that is an artefact of forwarding
// (DMARC, SPF, DKIM), so the relay sends it on under its own name.
//
// The new message has Reply-To set to the original author, Subject
// "Fwd: " and the original subject (decoded and re-encoded as RFC 2047
// words when not ASCII), "Auto-Submitted: auto-generated" (RFC 3834: it
// keeps vacation responders from answering the relay's postmaster; Gmail
// accepts such mail like any notification; "auto-forwarded" is no
// registered keyword), and the EncapsulatedHeader marker. Lines end in
// CRLF; the original keeps its own bytes. The attachment has no transfer
// encoding beyond 7bit, or 8bit when the original holds 8-bit bytes, and
// then the whole message is 8bit and must be sent with BODY=8BITMIME.
//
// The original is read into memory whole: the boundary must be one it
// does not contain, and the transfer encoding must be known before the
// part's header is written. An original carrying the marker is refused
// with ErrEncapsulated, and nothing is written.
func EncapsulateMessage(w io.Writer, original io.Reader, opts EncapsulateOptions) error {
	orig, err := io.ReadAll(original)
	if err != nil {
		return fmt.Errorf("enforce: encapsulate: reading the original: %w", err)
	}
	hdr := readMailHeader(bufio.NewReader(bytes.NewReader(orig)))
	if IsEncapsulated(hdr) {
		return ErrEncapsulated
	}
	for name, v := range map[string]string{"From": opts.From, "To": opts.To} {
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("enforce: encapsulate: bad %s address %q", name, v)
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	msgID := ""
	if opts.MessageID != nil {
		msgID = strings.Trim(singleLine(opts.MessageID()), "<>")
	}
	if msgID == "" {
		msgID = randomHex() + "@" + addressDomain(opts.From)
	}
	origFrom := opts.OriginalFrom
	if origFrom == "" {
		origFrom = hdr.Get("From")
	}
	subject := decodeWords(hdr.Get("Subject"))
	replyTo := replyToValue(origFrom, opts.OriginalSender)

	cte := "7bit"
	if has8bitBytes(orig) {
		cte = "8bit"
	}
	boundary := "=_relaykeeper_" + randomHex()
	for bytes.Contains(orig, []byte("--"+boundary)) {
		boundary = "=_relaykeeper_" + randomHex()
	}

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(foldField(name + ": " + value))
		b.WriteString("\r\n")
	}
	header("From", opts.From)
	header("To", opts.To)
	if replyTo != "" {
		header("Reply-To", replyTo)
	}
	header("Subject", "Fwd: "+mime.QEncoding.Encode("utf-8", subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+msgID+">")
	if id := singleLine(hdr.Get("Message-Id")); id != "" {
		// Threads the forward with the original in the recipient's reader.
		header("References", id)
	}
	header("Auto-Submitted", "auto-generated")
	header(EncapsulatedHeader, "1")
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	header("Content-Transfer-Encoding", cte)
	b.WriteString("\r\nThis is a MIME message: the original is attached.\r\n")

	// The covering note.
	b.WriteString("\r\n--" + boundary + "\r\n")
	note := coveringNote(opts, origFrom, subject, singleLine(hdr.Get("Message-Id")))
	if asciiOnly(note) {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
		b.WriteString(note)
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		qp := quotedprintable.NewWriter(&b)
		qp.Write([]byte(note))
		qp.Close()
	}

	// The original, untouched.
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Type: message/rfc822\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"original-message.eml\"\r\n")
	b.WriteString("Content-Transfer-Encoding: " + cte + "\r\n\r\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("enforce: encapsulate: %w", err)
	}
	// The boundary's CRLF belongs to the boundary (RFC 2046 5.1.1), so
	// the original's last line ending, or its lack, is its own.
	tail := "\r\n--" + boundary + "--\r\n"
	if _, err := w.Write(orig); err != nil {
		return fmt.Errorf("enforce: encapsulate: %w", err)
	}
	if _, err := io.WriteString(w, tail); err != nil {
		return fmt.Errorf("enforce: encapsulate: %w", err)
	}
	return nil
}

// coveringNote is the text/plain part, CRLF line endings.
func coveringNote(opts EncapsulateOptions, from, subject, msgID string) string {
	var sb strings.Builder
	para := func(s string) {
		for _, l := range wrapWords(s, 72) {
			sb.WriteString(l)
			sb.WriteString("\r\n")
		}
		sb.WriteString("\r\n")
	}
	para("The message attached below was sent to you through this mail relay. " +
		"The upstream server refused to take it as it was, because it failed an " +
		"authentication check (DMARC, SPF or DKIM). Such failures are usually an " +
		"artefact of forwarding: the message passed through a relay that its " +
		"sender's domain did not list, and they say nothing about the message itself.")
	para("So the relay sends the original to you as an attachment, whole and " +
		"unchanged. Check its sender before you trust it. Replying to this " +
		"message replies to its author.")
	field := func(name, value string) {
		if value = singleLine(value); value == "" {
			value = "(none)"
		}
		for i, l := range wrapWords(value, 72-18) {
			if i == 0 {
				fmt.Fprintf(&sb, "%-18s%s\r\n", name+":", l)
			} else {
				fmt.Fprintf(&sb, "%-18s%s\r\n", "", l)
			}
		}
	}
	sender := "<" + opts.OriginalSender + ">"
	field("Envelope sender", sender)
	field("From", decodeWords(from))
	field("Subject", subject)
	field("Message-ID", msgID)
	client := ""
	if opts.Client.IsValid() {
		client = opts.Client.String()
	}
	field("Submitted by", client)
	field("Upstream reply", opts.Reason)
	return sb.String()
}

// IsEncapsulated reports whether a message header carries the
// EncapsulatedHeader marker. It takes any header type with Get:
// net/mail.Header, net/textproto.MIMEHeader, *message.Header of go-message.
func IsEncapsulated(h interface{ Get(string) string }) bool {
	return strings.TrimSpace(h.Get(EncapsulatedHeader)) != ""
}

// ParseFromHeader reads only the header of a message and returns its From
// value as written (unfolded), its Subject decoded from RFC 2047 words,
// and its Message-ID. A missing field is "".
func ParseFromHeader(original io.Reader) (from, subject, messageID string) {
	h := readMailHeader(bufio.NewReader(original))
	return strings.TrimSpace(h.Get("From")), decodeWords(h.Get("Subject")), strings.TrimSpace(h.Get("Message-Id"))
}

// mailHeader is a message header as readMailHeader found it, keys lower-case.
type mailHeader map[string][]string

// Get returns the first value of the field named key.
func (h mailHeader) Get(key string) string {
	if v := h[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// readMailHeader reads header fields up to the empty line, leniently: a line
// that is neither a field nor a continuation ends the header, as does
// maxHeaderBytes.
func readMailHeader(r *bufio.Reader) mailHeader {
	h := mailHeader{}
	var name string
	var val strings.Builder
	flush := func() {
		if name != "" {
			h[name] = append(h[name], strings.TrimSpace(val.String()))
		}
		name = ""
		val.Reset()
	}
	read := 0
	for read < maxHeaderBytes {
		line, err := r.ReadString('\n')
		read += len(line)
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && name != "" {
			val.WriteString(" ")
			val.WriteString(strings.TrimSpace(line))
		} else if k, v, ok := strings.Cut(line, ":"); ok && k != "" && !strings.ContainsAny(k, " \t") {
			flush()
			name = strings.ToLower(k)
			val.WriteString(v)
		} else {
			break
		}
		if err != nil {
			break
		}
	}
	flush()
	return h
}

// decodeWords decodes RFC 2047 words in s, in any charset go-message
// knows; what cannot be decoded stays as written. The result is valid
// UTF-8 on one line.
func decodeWords(s string) string {
	d := mime.WordDecoder{CharsetReader: charset.Reader}
	if out, err := d.DecodeHeader(s); err == nil {
		s = out
	}
	return singleLine(s)
}

// replyToValue is the original author, re-encoded safely, or failing
// that the envelope sender.
func replyToValue(from, sender string) string {
	d := mime.WordDecoder{CharsetReader: charset.Reader}
	p := mail.AddressParser{WordDecoder: &d}
	if list, err := p.ParseList(from); err == nil && len(list) > 0 {
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = a.String()
		}
		return strings.Join(parts, ", ")
	}
	if sender != "" && !strings.ContainsAny(sender, "\r\n<>,") {
		return "<" + sender + ">"
	}
	return ""
}

// foldField folds a header field at spaces so that lines stay within 78
// characters where a space allows it (RFC 5322 2.2.3).
func foldField(field string) string {
	if len(field) <= 78 {
		return field
	}
	var sb strings.Builder
	line := 0
	for i, word := range strings.Split(field, " ") {
		if i > 0 {
			if line+1+len(word) > 78 && line > 1 {
				sb.WriteString("\r\n ")
				line = 1
			} else {
				sb.WriteByte(' ')
				line++
			}
		}
		sb.WriteString(word)
		line += len(word)
	}
	return sb.String()
}

// wrapWords splits s into lines of at most width bytes at spaces, where it can.
func wrapWords(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 || len(lines) == 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

func has8bitBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func asciiOnly(s string) bool { return !has8bitBytes([]byte(s)) }

func randomHex() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// addressDomain is the domain of an address such as "Relay <postmaster@relay.example>".
func addressDomain(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		if d := strings.Trim(addr[i+1:], "<> "); d != "" {
			return d
		}
	}
	return "localhost"
}

// Signer DKIM-signs a message (*dkim.Signer): Signature returns the
// DKIM-Signature field, CRLF-terminated, to put in front of the message.
type Signer interface {
	Signature(msg io.Reader) (string, error)
}
