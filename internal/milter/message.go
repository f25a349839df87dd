package milter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// field is one header field of the content file.
type field struct {
	name string
	// value is what the milter sees: the text after the colon and the
	// white space that follows it, without the final line break, folds
	// as "\n" (as Sendmail and Postfix send them).
	value string
	// raw is the field as it is in the file, line breaks included; nil
	// for a field the milter added or changed.
	raw []byte
}

// message is a spooled message as the milter session reads it.
type message struct {
	contentPath, envelopePath string
	f                         *os.File
	env                       *spool.Envelope
	fields                    []field
	sep                       []byte // the empty line ending the header section; nil if none
	bodyOff, size             int64
}

// readMessage reads the envelope and the content file's header section;
// the body is read later, from the file.
func readMessage(contentPath, envelopePath string) (*message, error) {
	ef, err := os.Open(envelopePath)
	if err != nil {
		return nil, err
	}
	env, err := spool.Unmarshal(ef)
	ef.Close()
	if err != nil {
		return nil, fmt.Errorf("envelope %s: %w", envelopePath, err)
	}
	f, err := os.Open(contentPath)
	if err != nil {
		return nil, err
	}
	m := &message{contentPath: contentPath, envelopePath: envelopePath, f: f, env: env}
	if err := m.readHeader(); err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", contentPath, err)
	}
	return m, nil
}

func (m *message) close() { m.f.Close() }

// readHeader splits the header section into fields (RFC 5322 2.2) and finds
// where the body starts: after the empty line, or at the first line that is
// neither a field nor a continuation.
func (m *message) readHeader() error {
	fi, err := m.f.Stat()
	if err != nil {
		return err
	}
	m.size = fi.Size()
	br := bufio.NewReaderSize(m.f, 32<<10)
	var off int64
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return err
		}
		if isBlank(line) && bytes.HasSuffix(line, []byte("\n")) {
			m.sep = line
			off += int64(len(line))
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.fields) > 0 {
			last := &m.fields[len(m.fields)-1]
			last.raw = append(last.raw, line...)
		} else if name, ok := fieldName(line); ok {
			m.fields = append(m.fields, field{name: name, raw: line})
		} else {
			break // the body starts here, with no empty line before it
		}
		off += int64(len(line))
		if err == io.EOF {
			break
		}
	}
	m.bodyOff = off
	for i := range m.fields {
		f := &m.fields[i]
		v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
		v = bytes.TrimRight(v, "\r\n")
		v = bytes.TrimLeft(v, " \t")
		f.value = strings.ReplaceAll(string(v), "\r\n", "\n")
	}
	return nil
}

func isBlank(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// fieldName returns the name of the field that starts on line: printable
// ASCII other than colon, then optional white space (obsolete syntax, RFC
// 5322 4.5.8) and a colon.
func fieldName(line []byte) (string, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(name), true
}

// checkHeaderChange refuses a header change that would not stay one field
// of the header section: a name that is not printable ASCII without a
// colon (an empty one made ":" a line that ended the header section and
// pushed the fields after it into the body), or a value with a line
// break that is not a fold (one that starts a new field or ends the
// header section). Deleting a field (an empty value) writes nothing and
// passes.
func checkHeaderChange(mod gomilter.ModifyAction) error {
	switch {
	case mod.Code == gomilter.ActChangeHeader && mod.HeaderValue == "":
		return nil
	case mod.Code != gomilter.ActAddHeader && mod.Code != gomilter.ActInsertHeader && mod.Code != gomilter.ActChangeHeader:
		return nil
	}
	if mod.HeaderName == "" || strings.ContainsFunc(mod.HeaderName, func(r rune) bool { return r < 33 || r > 126 || r == ':' }) {
		return fmt.Errorf("the milter sent a header field name %q, which is no field name", mod.HeaderName)
	}
	lines := strings.Split(string(crlf.Bytes([]byte(mod.HeaderValue))), "\r\n")
	for _, l := range lines[1:] {
		if l == "" || (l[0] != ' ' && l[0] != '\t') {
			return fmt.Errorf("the milter sent a %s field whose value breaks a line without folding it", mod.HeaderName)
		}
	}
	return nil
}

// body reads the body as it is in the file.
func (m *message) body() io.Reader {
	return io.NewSectionReader(m.f, m.bodyOff, m.size-m.bodyOff)
}

// apply makes the milter's changes: header fields and body to the content
// file, recipients to the envelope file, each replaced atomically. It
// reports whether any recipient is left to deliver to.
func (m *message) apply(mods []gomilter.ModifyAction) (rcptsLeft bool, err error) {
	fields := append([]field(nil), m.fields...)
	var newBody []byte
	bodyReplaced, contentChanged, envChanged := false, false, false
	env := m.env
	for _, mod := range mods {
		switch mod.Code {
		case gomilter.ActAddHeader:
			fields = append(fields, field{name: mod.HeaderName, value: mod.HeaderValue})
			contentChanged = true
		case gomilter.ActInsertHeader:
			// smfi_insheader: index 0 is the topmost field.
			i := min(int(mod.HeaderIndex), len(fields))
			fields = append(fields[:i], append([]field{{name: mod.HeaderName, value: mod.HeaderValue}}, fields[i:]...)...)
			contentChanged = true
		case gomilter.ActChangeHeader:
			fields = changeHeader(fields, int(mod.HeaderIndex), mod.HeaderName, mod.HeaderValue)
			contentChanged = true
		case gomilter.ActReplBody:
			// The new body comes in chunks, in order.
			newBody = append(newBody, mod.Body...)
			bodyReplaced, contentChanged = true, true
		case gomilter.ActAddRcpt:
			addr := bareAddr(mod.Rcpt)
			if !hasRcpt(env, addr) {
				env.Recipients = append(env.Recipients, spool.Recipient{Addr: addr, Status: spool.Pending})
				envChanged = true
			}
		case gomilter.ActDelRcpt:
			addr := bareAddr(mod.Rcpt)
			kept := env.Recipients[:0]
			for _, r := range env.Recipients {
				if r.Status != spool.Sent && strings.EqualFold(r.Addr, addr) {
					envChanged = true
					continue
				}
				kept = append(kept, r)
			}
			env.Recipients = kept
		}
	}
	if contentChanged {
		err := safefile.Replace(m.contentPath, safefile.Options{}, func(w io.Writer) error {
			for _, f := range fields {
				if _, err := w.Write(f.bytes()); err != nil {
					return err
				}
			}
			if bodyReplaced {
				if len(m.sep) > 0 || len(newBody) > 0 {
					io.WriteString(w, "\r\n")
				}
				_, err := w.Write(crlf.Bytes(newBody))
				return err
			}
			if m.sep != nil {
				w.Write(m.sep)
			} else if m.size > m.bodyOff {
				// The body started without an empty line; give it
				// one, so that it cannot run into a new field.
				io.WriteString(w, "\r\n")
			}
			_, err := io.Copy(w, m.body())
			return err
		})
		if err != nil {
			return false, fmt.Errorf("rewrite %s: %w", m.contentPath, err)
		}
	}
	if envChanged {
		data := env.Marshal()
		err := safefile.Replace(m.envelopePath, safefile.Options{}, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return false, fmt.Errorf("rewrite %s: %w", m.envelopePath, err)
		}
	}
	for _, r := range env.Recipients {
		if r.Status != spool.Sent {
			return true, nil
		}
	}
	return false, nil
}

// changeHeader is smfi_chgheader: it changes the index'th (from 1) field
// called name, or deletes it if value is empty. A field that is not there
// is added, as Sendmail does.
func changeHeader(fields []field, index int, name, value string) []field {
	index = max(index, 1)
	n := 0
	for i, f := range fields {
		if !strings.EqualFold(f.name, name) {
			continue
		}
		if n++; n < index {
			continue
		}
		if value == "" {
			return append(fields[:i], fields[i+1:]...)
		}
		fields[i] = field{name: f.name, value: value}
		return fields
	}
	if value != "" {
		fields = append(fields, field{name: name, value: value})
	}
	return fields
}

// bytes is the field as it goes in the file: as it was (with a line break
// if it had none), or "Name: value" with CRLF line breaks.
func (f field) bytes() []byte {
	if f.raw != nil {
		if !bytes.HasSuffix(f.raw, []byte("\n")) {
			// The last line of a file without a final line break:
			// without one, the next field would be glued onto it.
			return append(f.raw[:len(f.raw):len(f.raw)], '\r', '\n')
		}
		return f.raw
	}
	var b bytes.Buffer
	b.WriteString(f.name)
	b.WriteByte(':')
	if f.value != "" && f.value[0] != ' ' && f.value[0] != '\t' {
		b.WriteByte(' ')
	}
	b.Write(crlf.Bytes([]byte(f.value)))
	b.WriteString("\r\n")
	return b.Bytes()
}

func bareAddr(s string) string {
	return strings.Trim(s, "<> \t")
}

func hasRcpt(env *spool.Envelope, addr string) bool {
	for _, r := range env.Recipients {
		if r.Status != spool.Sent && strings.EqualFold(r.Addr, addr) {
			return true
		}
	}
	return false
}
