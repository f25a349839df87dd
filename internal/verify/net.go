package verify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/idleconn"
)

// The network verifier protocol (E-MailRelay's "net:" verifiers), one
// request and one reply per line over a persistent connection:
//
//	request: recipient|sender|client-ip:port|domain|mechanism|auth-id LF
//	reply:   0|mailbox|full name        valid local
//	         1|address                  valid remote
//	         2|text[|reason]            invalid, 550
//	         3|text[|reason]            temporary failure, 450
//	         100                        drop the connection
//
// The exit code comes first and, for code 0, the program's two output lines
// come in reverse order; other codes keep the program's order. A last field
// may itself contain "|". Codes 4–99 and 101–999 mean the same as 2, as for
// a program. Each field is trimmed.
//
// Verifier keeps up to maxIdle connections open between requests and
// uses each for one request at a time; a request that fails on a reused
// connection (the daemon may have closed it while it was idle) is retried
// once on a new connection. A reply that does not parse closes the
// connection and makes a TempFail.

const (
	maxIdle      = 8
	maxReplyLine = 4096
)

// netConn is a connection to a network verifier and its reader.
type netConn struct {
	net.Conn
	r *bufio.Reader
}

// askNet sends args to the network verifier and returns the reply as an
// exit code and output lines in a program's order.
func (v *Verifier) askNet(ctx context.Context, args []string) (int, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req := strings.Join(args, "|") + "\n"
	for attempt := 0; ; attempt++ {
		c, reused, err := v.conn(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("verify: connect to %s: %w", v.addr, err)
		}
		line, err := c.exchange(ctx, req)
		if err != nil {
			c.Close()
			if reused && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return 0, nil, fmt.Errorf("verify: %s: %w", v.addr, err)
		}
		exit, lines, err := parseNetReply(line)
		if err != nil {
			c.Close()
			return 0, nil, fmt.Errorf("verify: %s: %w", v.addr, err)
		}
		v.putIdle(c)
		return exit, lines, nil
	}
}

// conn returns an idle connection, or a new one.
func (v *Verifier) conn(ctx context.Context) (c *netConn, reused bool, err error) {
	for {
		v.mu.Lock()
		c = nil
		if n := len(v.idle); n > 0 {
			c = v.idle[n-1]
			v.idle = v.idle[:n-1]
		}
		v.mu.Unlock()
		if c == nil {
			break
		}
		if !idleconn.Stale(c.Conn, c.r) {
			return c, true, nil
		}
		c.Close() // out of step with the daemon, or closed by it
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, v.network, v.addr)
	if err != nil {
		return nil, false, err
	}
	return &netConn{Conn: nc, r: bufio.NewReaderSize(nc, maxReplyLine)}, false, nil
}

// putIdle keeps c for the next request, unless there are enough already.
func (v *Verifier) putIdle(c *netConn) {
	// Bytes after the reply would be taken for the next reply.
	if c.r.Buffered() > 0 || c.SetDeadline(time.Time{}) != nil {
		c.Close()
		return
	}
	v.mu.Lock()
	if v.closed || len(v.idle) >= maxIdle {
		v.mu.Unlock()
		c.Close()
		return
	}
	v.idle = append(v.idle, c)
	v.mu.Unlock()
}

// exchange writes req and reads one reply line, within ctx.
func (c *netConn) exchange(ctx context.Context, req string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return "", err
		}
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("reply longer than %d bytes", maxReplyLine)
	}
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// parseNetReply parses one reply line of a network verifier into an exit
// code and the two output lines a program would have printed.
func parseNetReply(line string) (exit int, lines []string, err error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if strings.ContainsAny(line, "\r\n") {
		return 0, nil, errors.New("reply has more than one line")
	}
	fields := strings.SplitN(line, "|", 3)
	code := strings.TrimSpace(fields[0])
	if code == "" || len(code) > 3 || strings.Trim(code, "0123456789") != "" {
		return 0, nil, fmt.Errorf("bad reply %q: no exit code", truncate(line))
	}
	exit, _ = strconv.Atoi(code)
	field := func(i int) string {
		if i < len(fields) {
			return strings.TrimSpace(fields[i])
		}
		return ""
	}
	switch exit {
	case 0:
		return exit, []string{field(2), field(1)}, nil
	case 1:
		return exit, []string{"", field(1)}, nil
	}
	return exit, []string{field(1), field(2)}, nil
}

// printable replaces control characters and invalid UTF-8 in a verifier's
// text, which ends up in an SMTP reply and in logs.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
