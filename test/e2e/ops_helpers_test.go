package e2e

// Helpers of the ops_*_test.go files: a relay started with a whole
// configuration file of the test's own, the "notice" mail-log lines, a
// parser for the delivery status notifications (RFC 3464) the relay sends,
// and a runner for relaykeeper's own commands (queue, stats).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// opsConfig writes a configuration file with exactly text (no defaults
// added, so that the test may set any [delivery] key) and returns its path.
func opsConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// opsRelay starts "relaykeeper --as-server --forward-to upstream" on
// 127.0.0.1 with the domain relay.test, a fresh spool, the configuration
// text (empty: none) and the extra switches.
func opsRelay(t *testing.T, upstream, cfg string, extra ...string) *relay {
	t.Helper()
	args := []string{"--as-server", "--forward-to", upstream, "--interface", "127.0.0.1",
		"--domain", "relay.test", "--spool-dir", t.TempDir()}
	if cfg != "" {
		args = append(args, "--config", opsConfig(t, cfg))
	}
	return startRelay(t, "127.0.0.1", append(args, extra...)...)
}

// opsRefusingRelay is an opsRelay, forwarding on disconnect, and its
// upstream, which offers capability (with PIPELINING, 8BITMIME,
// ENHANCEDSTATUSCODES and SIZE) and refuses bad@example.net with refused.
func opsRefusingRelay(t *testing.T, refused, capability string) (*relay, *harness.FakeSMTP) {
	t.Helper()
	fake := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", capability, "SIZE 52428800"},
		RcptFor:      map[string]harness.Response{"bad@example.net": {Reply: refused}},
	})
	return opsRelay(t, fake.Addr(), "", "--forward-on-disconnect"), fake
}

// opsNotices returns the relay's "notice" mail-log lines, optionally only
// those about the message orig.
func opsNotices(r *relay, orig string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("notice") {
		if orig == "" || e.Get("orig") == orig {
			out = append(out, e)
		}
	}
	return out
}

// opsSend sends one message over a session of its own with the given EHLO
// name and raw MAIL and RCPT argument strings ("<a@b> RET=HDRS"), and
// returns the replies to the RCPTs and the final reply (nil if DATA was
// not reached). It fails the test on an unexpected reply to EHLO, MAIL,
// or DATA.
func opsSend(t *testing.T, addr, helo, mail string, rcpts []string, body string) ([]reply, reply) {
	t.Helper()
	c := mustDial(t, addr, "")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO %s", helo)
	mustCmd(t, c, "250", "MAIL FROM:%s", mail)
	var rr []reply
	ok := 0
	for _, r := range rcpts {
		rep, err := c.cmd("RCPT TO:%s", r)
		if err != nil {
			t.Fatalf("RCPT TO:%s: %v", r, err)
		}
		rr = append(rr, rep)
		if rep.code()/100 == 2 {
			ok++
		}
	}
	if ok == 0 {
		c.cmd("QUIT")
		return rr, nil
	}
	mustCmd(t, c, "354", "DATA")
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(body, "\r\n", "\n"), "\n"), "\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString(".\r\n")
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		t.Fatalf("sending the content: %v", err)
	}
	final, err := c.read()
	if err != nil {
		t.Fatalf("reply to the final dot: %v", err)
	}
	c.cmd("QUIT")
	return rr, final
}

// dsnNotice is a delivery status notification taken apart.
type dsnNotice struct {
	Header gomessage.Header
	// Parts are the top-level body parts: Content-Type and body.
	Types  []string
	Bodies []string
	// PerMessage and PerRecipient are the delivery-status part's field
	// groups (RFC 3464 section 2.1), unfolded.
	PerMessage   textproto.Header
	PerRecipient []textproto.Header
}

// parseNotice parses a notice with go-message: it must be a
// multipart/report; report-type=delivery-status whose second part is a
// message/delivery-status.
func parseNotice(t *testing.T, data string) dsnNotice {
	t.Helper()
	ent, err := gomessage.Read(strings.NewReader(data))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		t.Fatalf("notice does not parse: %v\n%s", err, data)
	}
	var n dsnNotice
	n.Header = ent.Header
	mt, params, err := ent.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("notice Content-Type %q %v (%v); want multipart/report; report-type=delivery-status\n%s", mt, params, err, data)
	}
	mr := ent.MultipartReader()
	if mr == nil {
		t.Fatalf("notice is not multipart:\n%s", data)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !gomessage.IsUnknownCharset(err) {
			t.Fatalf("notice part %d: %v\n%s", len(n.Types)+1, err, data)
		}
		pt, _, _ := p.Header.ContentType()
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("notice part %d: %v", len(n.Types)+1, err)
		}
		n.Types = append(n.Types, pt)
		n.Bodies = append(n.Bodies, string(body))
	}
	if len(n.Types) < 2 || n.Types[1] != "message/delivery-status" {
		t.Fatalf("notice parts %q; want the second to be message/delivery-status\n%s", n.Types, data)
	}
	br := bufio.NewReader(strings.NewReader(n.Bodies[1]))
	for i := 0; ; i++ {
		// Skip blank lines between groups.
		for {
			b, err := br.Peek(1)
			if err != nil || (b[0] != '\r' && b[0] != '\n') {
				break
			}
			br.ReadByte()
		}
		if _, err := br.Peek(1); err != nil {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("delivery-status group %d: %v\n%s", i+1, err, n.Bodies[1])
		}
		if i == 0 {
			n.PerMessage = h
		} else {
			n.PerRecipient = append(n.PerRecipient, h)
		}
		if err != nil {
			break
		}
	}
	return n
}

// field returns a delivery-status field with folding undone.
func dsnField(h textproto.Header, name string) string {
	v := h.Get(name)
	return strings.Join(strings.Fields(v), " ")
}

// opsCmd runs "relaykeeper ARGS..." to its end (bounded), with stdin, and
// returns its standard output, standard error and exit status.
func opsCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runBinary(t, harness.Binary(t), stdin, args...)
}

// runBinary runs bin (relaykeeper, or a link to it under another name)
// with stdin and returns its output and exit status.
func runBinary(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // a loaded machine may take a second to drain the pipes
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 20s", bin, args)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// opsSpool lists the messages in a spool as spoolFiles does, leaving out
// the files that are not messages (the enforcer's tables live there too).
func opsSpool(t *testing.T, dir string) map[string][]string {
	t.Helper()
	f := spoolFiles(t, dir)
	for id := range f {
		if !opsIDRE.MatchString(id) {
			delete(f, id)
		}
	}
	return f
}

var opsIDRE = regexp.MustCompile(`^[0-9A-F]{16}$`)

// waitOpsSpool waits until the spool's messages satisfy cond.
func waitOpsSpool(t *testing.T, dir string, timeout time.Duration, what string, cond func(map[string][]string) bool) map[string][]string {
	t.Helper()
	var files map[string][]string
	if !waitFor(timeout, func() bool { files = opsSpool(t, dir); return cond(files) }) {
		t.Fatalf("spool %s after %v holds %v; want %s", dir, timeout, files, what)
	}
	return files
}

// sighups counts the relay's diagnostic lines saying that it got SIGHUP.
func sighups(r *relay) int {
	return len(diagLines(r, "SIGHUP: reloading tables, rescanning the spool"))
}

// txsFrom returns the upstream's transactions with envelope sender from
// ("" for notices).
func txsFrom(f *harness.FakeSMTP, from string) []harness.Transaction {
	var out []harness.Transaction
	for _, tx := range f.Transactions() {
		if tx.MailFrom == from {
			out = append(out, tx)
		}
	}
	return out
}

// subjectOf returns the Subject header of a message ("\n" or "\r\n").
func subjectOf(data string) string {
	for _, l := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		if l == "" {
			return ""
		}
		if v, ok := strings.CutPrefix(l, "Subject: "); ok {
			return v
		}
	}
	return ""
}
