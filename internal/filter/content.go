package filter

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// msgID is msgid:[DOMAIN]: it adds a Message-ID header field (RFC 5322
// 3.6.4) to a message that has none, at the end of the header section.
type msgID struct {
	spec   string
	domain string
	now    func() time.Time
}

func newMsgID(spec, domain string) (*msgID, error) {
	domain = strings.TrimSpace(domain)
	if domain == "" {
		domain, _ = os.Hostname()
		if domain == "" || strings.ContainsAny(domain, " \t<>@") {
			domain = "localhost"
		}
	}
	if strings.ContainsAny(domain, " \t\r\n<>@()[]\\\",;:") {
		return nil, fmt.Errorf("filter: %q: bad domain for Message-ID", spec)
	}
	return &msgID{spec: spec, domain: domain, now: time.Now}, nil
}

func (m *msgID) String() string { return m.spec }

func (m *msgID) Run(ctx context.Context, contentPath, _ string) Result {
	if err := ctx.Err(); err != nil {
		return tempFail("msgid: %v", err)
	}
	f, err := os.Open(contentPath)
	if err != nil {
		return tempFail("msgid: %v", err)
	}
	defer f.Close()
	has, end, nl, err := scanHeader(f)
	if err != nil {
		return tempFail("msgid: read %s: %v", contentPath, err)
	}
	if has {
		return okResult()
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	id := fmt.Sprintf("<%s.%s@%s>", m.now().UTC().Format("20060102150405"), hex.EncodeToString(rnd[:]), m.domain)
	err = safefile.Replace(contentPath, safefile.Options{}, func(w io.Writer) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(w, f, end); err != nil {
			return err
		}
		if !nl {
			io.WriteString(w, "\r\n")
		}
		io.WriteString(w, "Message-ID: "+id+"\r\n")
		_, err := io.Copy(w, f)
		return err
	})
	if err != nil {
		return tempFail("msgid: rewrite %s: %v", contentPath, err)
	}
	return okResult()
}

// scanHeader reads a message's header section and reports whether it has a
// Message-ID field, the offset where the header section ends (the empty
// line, the first line that is not a header field, or the end of the file),
// and whether the text before that offset ends with a line feed.
func scanHeader(r io.Reader) (hasID bool, end int64, nl bool, err error) {
	br := bufio.NewReaderSize(r, 16<<10)
	nl = true // an empty prefix needs no line break before an insertion
	seenField := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) == 0 {
			if err == io.EOF {
				return hasID, end, nl, nil
			}
			return false, 0, false, err
		}
		// Look at the line's start before reading the rest of a long line.
		isField, isID := headerLine(chunk, seenField)
		if !isField {
			return hasID, end, nl, nil
		}
		seenField = true
		hasID = hasID || isID
		n := int64(len(chunk))
		last := chunk[len(chunk)-1]
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = br.ReadSlice('\n')
			n += int64(len(chunk))
			if len(chunk) > 0 {
				last = chunk[len(chunk)-1]
			}
		}
		end += n
		nl = last == '\n'
		if err == io.EOF {
			return hasID, end, nl, nil
		}
		if err != nil {
			return false, 0, false, err
		}
	}
}

// headerLine classifies the start of a line: a header field (a field name
// of printable ASCII other than colon, optional white space, then a colon;
// RFC 5322 2.2 and obsolete syntax 4.5) or, after a field, a continuation
// line starting with white space. isID says the field is Message-ID.
func headerLine(line []byte, afterField bool) (isField, isID bool) {
	if line[0] == ' ' || line[0] == '\t' {
		return afterField && len(bytes.TrimSpace(line)) > 0, false
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false, false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false, false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false, false
		}
	}
	return true, strings.EqualFold(string(name), "Message-ID")
}
