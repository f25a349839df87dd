package filter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

const (
	// spamMaxSize is the largest message given to spamd; larger ones pass
	// unchecked and unchanged, as with spamc's default --max-size.
	spamMaxSize = 512000
	// spamMaxReply bounds the rewritten message spam-edit: accepts.
	spamMaxReply = 64 << 20
)

// spamd is spam: and spam-edit:, a client of SpamAssassin's spamd (protocol
// SPAMC/1.5, one request per connection). spam: sends CHECK and rejects a
// message spamd calls spam; spam-edit: sends PROCESS and replaces the
// content with the message spamd returns (with its X-Spam- headers, or
// spam wrapped as an attachment, as spamd is configured), and never
// rejects. Either gives TempFail if spamd cannot be reached, times out or
// answers anything but a well-formed success.
type spamd struct {
	spec             string
	network, address string
	edit             bool
	timeout          time.Duration
}

func newSpamd(spec, addr string, edit bool, timeout time.Duration) (*spamd, error) {
	network, address, err := splitAddress(spec, addr)
	if err != nil {
		return nil, err
	}
	return &spamd{spec: spec, network: network, address: address, edit: edit, timeout: timeout}, nil
}

func (s *spamd) String() string { return s.spec }

func (s *spamd) Run(ctx context.Context, contentPath, _ string) Result {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	f, err := os.Open(contentPath)
	if err != nil {
		return tempFail("spamd: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return tempFail("spamd: %v", err)
	}
	if fi.Size() > spamMaxSize {
		return Result{Outcome: OK, Reason: fmt.Sprintf("spamd: not checked: message larger than %d bytes", spamMaxSize)}
	}

	var d net.Dialer
	c, err := d.DialContext(ctx, s.network, s.address)
	if err != nil {
		return tempFail("spamd %s: %v", s.address, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })()

	method := "CHECK"
	if s.edit {
		method = "PROCESS"
	}
	hdr, br, err := spamdExchange(c, method, f, fi.Size())
	if err != nil {
		if ctx.Err() != nil {
			return tempFail("spamd %s: %v: %v", s.address, ctx.Err(), err)
		}
		return tempFail("spamd %s: %v", s.address, err)
	}
	spam, score, ok := parseSpamHeader(hdr["spam"])

	if !s.edit {
		if !ok {
			return tempFail("spamd %s: no valid Spam header in the reply to CHECK", s.address)
		}
		if spam {
			return Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1",
				Text: "message rejected: spam detected", Reason: "spamd: spam, score " + score}
		}
		return Result{Outcome: OK, Reason: "spamd: not spam, score " + score}
	}

	n, err := strconv.ParseInt(hdr["content-length"], 10, 64)
	if err != nil || n <= 0 || n > spamMaxReply {
		return tempFail("spamd %s: bad Content-length %q in the reply to PROCESS", s.address, hdr["content-length"])
	}
	err = safefile.Replace(contentPath, safefile.Options{}, func(w io.Writer) error {
		cw := crlf.NewWriter(w)
		got, err := io.Copy(cw, io.LimitReader(br, n))
		if err == nil && got != n {
			err = fmt.Errorf("message cut short after %d of %d bytes", got, n)
		}
		if err != nil {
			return err
		}
		return cw.Close()
	})
	if err != nil {
		if ctx.Err() != nil {
			return tempFail("spamd %s: %v: %v", s.address, ctx.Err(), err)
		}
		return tempFail("spamd %s: %v", s.address, err)
	}
	r := okResult()
	if ok {
		r.Reason = "spamd: rewritten, score " + score
	}
	return r
}

// spamdExchange sends one request with the message and reads the reply's
// status line and headers, returning the headers by lower-case name and
// the reader positioned at the body.
func spamdExchange(c net.Conn, method string, msg io.Reader, size int64) (map[string]string, *bufio.Reader, error) {
	bw := bufio.NewWriterSize(c, 64<<10)
	fmt.Fprintf(bw, "%s SPAMC/1.5\r\nContent-length: %d\r\n\r\n", method, size)
	if _, err := io.CopyN(bw, msg, size); err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}

	br := bufio.NewReaderSize(c, 16<<10)
	status, err := readSpamdLine(br)
	if err != nil {
		return nil, nil, fmt.Errorf("read reply: %w", err)
	}
	// "SPAMD/1.1 0 EX_OK"; any other code is spamd's failure (a sysexits
	// value, such as 76 EX_PROTOCOL).
	fields := strings.Fields(status)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "SPAMD/") {
		return nil, nil, fmt.Errorf("not a spamd reply: %q", oneLine(status))
	}
	if fields[1] != "0" {
		return nil, nil, fmt.Errorf("spamd failed: %q", oneLine(status))
	}
	hdr := make(map[string]string)
	for range 100 {
		line, err := readSpamdLine(br)
		if err != nil {
			return nil, nil, fmt.Errorf("read reply headers: %w", err)
		}
		if line == "" {
			return hdr, br, nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("bad reply header %q", oneLine(line))
		}
		hdr[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	return nil, nil, errors.New("too many reply headers")
}

// readSpamdLine reads one CRLF (or LF) terminated line of at most 8 KiB.
func readSpamdLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > 8<<10 {
		return "", errors.New("reply line too long")
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// parseSpamHeader reads spamd's "Spam: True ; 15.3 / 5.0" header value.
func parseSpamHeader(v string) (spam bool, score string, ok bool) {
	verdict, score, found := strings.Cut(v, ";")
	if !found {
		return false, "", false
	}
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		spam = true
	case "false", "no":
	default:
		return false, "", false
	}
	return spam, strings.Join(strings.Fields(score), " "), true
}
