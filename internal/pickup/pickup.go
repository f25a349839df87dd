// Package pickup puts a locally submitted message into the spool, as
// Postfix's pickup does for sendmail(1): it reads the message, finds its
// recipients and sender where the caller asks, adds the trace and the
// header fields a message must have, and stores it durably, ready for
// forwarding. The command line that calls it (relaykeeper submit, a
// sendmail-style invocation) stays in cmd/relaykeeper.
package pickup

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// HeaderRecipients returns the addresses of the To, Cc and Bcc fields, as
// sendmail -t takes them.
func (m *Message) HeaderRecipients() ([]envelope.Address, error) {
	var out []envelope.Address
	for _, name := range []string{"To", "Cc", "Bcc"} {
		for _, v := range m.Values(name) {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				return nil, fmt.Errorf("pickup: %s header %q is not a list of addresses (%s)", name, strings.TrimSpace(v), mailDetail(err))
			}
			for _, ma := range list {
				a, err := envelope.ParseUnquoted(ma.Address)
				if err != nil {
					return nil, fmt.Errorf("pickup: %s header address %q: %w", name, ma.Address, err)
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// mailDetail is what net/mail found wrong, without its "mail: " prefixes
// ("mail: missing word in phrase: mail: unclosed quoted-string"), which
// read as a program's internals to whoever wrote the header.
func mailDetail(err error) string {
	return strings.ReplaceAll(err.Error(), "mail: ", "")
}

// DefaultSender is the envelope sender when the caller names none: the
// first address of the From field, else user@host.
func (m *Message) DefaultSender(user, host string) (envelope.Address, error) {
	if vs := m.Values("From"); len(vs) > 0 {
		if list, err := mail.ParseAddressList(vs[0]); err == nil && len(list) > 0 {
			if a, err := envelope.ParseUnquoted(list[0].Address); err == nil && a.String() != "" {
				return a, nil
			}
		}
	}
	return envelope.Parse(user + "@" + host)
}

// Submission is how one message is stored.
type Submission struct {
	Sender     envelope.Address // the zero Address is the null sender
	Recipients []string
	// DSN is the notices asked for: NOTIFY for every recipient, RET,
	// ENVID.
	DSN DSN
	// Host names this host in the Received field and in a Message-ID
	// made up for the message.
	Host string
	// UID is the submitting user's, for the Received field.
	UID int
	Now time.Time
	// Canonical, if set, maps the envelope and the header's addresses
	// (canonical maps, masquerading), as Postfix's cleanup maps what its
	// pickup hands it: local mail is always the header's too.
	Canonical *rewrite.Canonical
}

// Submit stores m in sp, durably, ready for forwarding, and returns its
// queue id. Nothing is left in the spool if it fails.
func Submit(sp *spool.Spool, m *Message, s Submission) (string, error) {
	if len(s.Recipients) == 0 {
		return "", errors.New("pickup: no recipients")
	}
	w, err := sp.Create(s.Now)
	if err != nil {
		return "", err
	}
	content := m.content(w.ID(), s)
	env := &spool.Envelope{
		From:     s.Canonical.SenderAddr(s.Sender.String()),
		BodyType: "7bit",
		Client:   "local",
		Arrival:  s.Now,
		Ret:      s.DSN.Ret,
		EnvID:    s.DSN.EnvID,
	}
	if s.Canonical.Enabled() || s.Canonical.HasGeneric() {
		var b bytes.Buffer
		h := &rewrite.HeaderWriter{W: &b, C: s.Canonical, GenericOnly: !s.Canonical.Enabled()}
		_, err := h.Write(content)
		if err == nil {
			err = h.Close()
		}
		if err != nil {
			w.Abort()
			return "", fmt.Errorf("pickup: mapping the header's addresses: %w", err)
		}
		content = b.Bytes()
	}
	if bytes.ContainsFunc(content, func(r rune) bool { return r >= 0x80 }) {
		env.BodyType = "8bit"
	}
	for _, r := range append([]string{env.From}, s.Recipients...) {
		env.SMTPUTF8 = env.SMTPUTF8 || strings.ContainsFunc(r, func(c rune) bool { return c >= 0x80 })
	}
	for _, r := range s.Recipients {
		rc := spool.Recipient{Addr: s.Canonical.RecipientAddr(r), Status: spool.Pending, Notify: s.DSN.Notify}
		if rc.Addr != r && !strings.ContainsFunc(r, func(c rune) bool { return c >= 0x80 }) {
			rc.ORCPT = "rfc822;" + r // the original, as for a recipient mapped at RCPT
		}
		env.Recipients = append(env.Recipients, rc)
	}
	env.Recipients = spool.MergeDuplicates(env.Recipients) // "sendmail a@x a@x" sends once
	var mapped []string
	for _, r := range env.Recipients {
		mapped = append(mapped, r.Addr)
	}
	for _, a := range s.Canonical.BCC(env.From, mapped) { // always_bcc and the BCC maps
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: a, Status: spool.Pending, Notify: "NEVER"})
	}
	if env.Recipients, err = spool.ExpandRecipients(env.Recipients, s.Canonical.Expand); err != nil { // virtual_alias_maps
		w.Abort()
		return "", fmt.Errorf("pickup: %w; try again later", err)
	}
	env.From, env.Recipients = s.Canonical.Generic(env.From, env.Recipients) // smtp_generic_maps
	if _, err := w.Write(content); err != nil {
		w.Abort()
		return "", fmt.Errorf("pickup: writing the message: %w", err)
	}
	if err := w.Finish(env); err != nil {
		return "", err
	}
	return w.ID(), nil
}

// Message is a message read from the input: its header fields, each with
// its continuation lines and CRLF, and its body.
type Message struct {
	fields []headerField
	body   []byte
}

type headerField struct {
	name string // as written
	raw  string // "Name: value\r\n" with continuation lines
}

// Parse reads a message with LF or CRLF line endings (stored as
// CRLF), without a leading mbox "From " line. The header ends at the blank line, or, as with Postfix, at the
// first line that is neither a header field nor a continuation line, which
// then starts the body.
func Parse(raw []byte) *Message {
	// Every line ending becomes CRLF, a lone CR too, as for SMTP (see
	// package crlf).
	norm := crlf.Bytes(raw)
	if len(norm) > 0 && !bytes.HasSuffix(norm, []byte("\r\n")) {
		norm = append(norm, "\r\n"...)
	}
	m := &Message{}
	rest := norm
	if bytes.HasPrefix(rest, []byte("From ")) {
		// An mbox "From " line, which sendmail's callers may leave in.
		rest = rest[bytes.Index(rest, []byte("\r\n"))+2:]
	}
	// A field's lines are contiguous in norm: each field is kept as its
	// span and made a string once the header ends. (Appending each
	// continuation line to the string took time quadratic in a field's
	// lines: a 300 KB field of 100,000 lines took 14 s.)
	var spans [][2]int
	defer func() {
		for i, sp := range spans {
			m.fields[i].raw = string(norm[sp[0]:sp[1]])
		}
	}()
	for len(rest) > 0 {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i+2]
		at := len(norm) - len(rest)
		switch {
		case i == 0:
			m.body = rest[2:] // the blank line ends the header
			return m
		case (line[0] == ' ' || line[0] == '\t') && len(m.fields) > 0:
			spans[len(spans)-1][1] = at + len(line)
		case fieldName(line) != "":
			m.fields = append(m.fields, headerField{name: fieldName(line)})
			spans = append(spans, [2]int{at, at + len(line)})
		default:
			m.body = rest
			return m
		}
		rest = rest[i+2:]
	}
	return m
}

// fieldName returns the name of a header field line (RFC 5322 section
// 2.2: printable ASCII but ':', then ':'), or "".
func fieldName(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	for _, c := range line[:i] {
		if c <= ' ' || c > '~' {
			return ""
		}
	}
	return string(line[:i])
}

// Values returns the unfolded values of the fields called name.
func (m *Message) Values(name string) []string {
	var out []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			v := f.raw[len(f.name)+1:]
			v = strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t", "\r\n", "").Replace(v)
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// content is the message as stored: a Received header (RFC 5321 section
// 4.4, in the form Postfix's pickup writes for local mail), the fields but
// Bcc, and From, Message-ID and Date if missing (RFC 5322 section 3.6
// requires From and Date and recommends Message-ID; Postfix's cleanup adds
// them to local mail, From naming the envelope sender or MAILER-DAEMON),
// the blank line and the body.
func (m *Message) content(id string, s Submission) []byte {
	host, rcpts, now := s.Host, s.Recipients, s.Now
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: by %s (relaykeeper, from userid %d)\r\n\tid %s", host, s.UID, id)
	if len(rcpts) == 1 {
		// Only for one recipient: more would tell each who else got it.
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", now.Format(time.RFC1123Z))
	for _, f := range m.fields {
		if !strings.EqualFold(f.name, "Bcc") {
			b.WriteString(f.raw)
		}
	}
	if len(m.Values("From")) == 0 {
		from := s.Sender.String()
		if from == "" {
			from = "MAILER-DAEMON@" + host
		}
		fmt.Fprintf(&b, "From: %s\r\n", from)
	}
	if len(m.Values("Message-ID")) == 0 {
		fmt.Fprintf(&b, "Message-ID: <%s.%d@%s>\r\n", id, now.UnixNano(), host)
	}
	if len(m.Values("Date")) == 0 {
		fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	b.WriteString("\r\n")
	b.Write(m.body)
	return b.Bytes()
}
