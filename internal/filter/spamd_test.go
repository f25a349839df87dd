package filter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gtube is a message with SpamAssassin's GTUBE test string, which every
// SpamAssassin scores as spam.
const gtube = "From: Spammer <spammer@example.com>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: buy now\r\n" +
	"Message-ID: <gtube@example.com>\r\n" +
	"\r\n" +
	"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"

var (
	installOnce sync.Once
	installMsg  string
)

// ensureSpamAssassin returns the path of a SpamAssassin program (spamd or
// spamassassin). If it is missing, it installs Debian's spamassassin and
// spamd packages, when running as root with a working apt-get, once per test
// run; otherwise the test is skipped with the reason.
func ensureSpamAssassin(t *testing.T, prog string) string {
	t.Helper()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	installOnce.Do(func() {
		if os.Geteuid() != 0 {
			installMsg = "not root, cannot install it"
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			installMsg = "no apt-get to install it with"
			return
		}
		install := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-q", "--no-install-recommends", "spamassassin", "spamd")
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, lastLines(string(out), 3))
			}
			return nil
		}
		if err := install(); err != nil {
			// The package lists may be missing or stale.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			exec.CommandContext(ctx, "apt-get", "update", "-q").Run()
			cancel()
			if err := install(); err != nil {
				installMsg = "apt-get install spamassassin spamd failed: " + err.Error()
			}
		}
	})
	p, err := exec.LookPath(prog)
	if err != nil {
		if installMsg == "" {
			installMsg = "installed, but still not found"
		}
		harness.Missing(t, "%s (SpamAssassin) not available: %s", prog, installMsg)
	}
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// startSpamd runs a private spamd on a loopback port for the test and
// returns its address; it is stopped, by its pid, when the test ends. A
// spamd that does not answer PING within 30 s skips the test.
func startSpamd(t *testing.T) string {
	t.Helper()
	bin := ensureSpamAssassin(t, "spamd")
	// Find a free port; spamd binds it a moment later.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	dir := t.TempDir()
	args := []string{"--listen", addr, "--pidfile", filepath.Join(dir, "spamd.pid"),
		"--syslog", "stderr", "--nouser-config", "--local", "--max-children", "2",
		"--helper-home-dir", dir}
	if os.Geteuid() == 0 {
		os.Chmod(dir, 0o777)
		args = append(args, "--username", "nobody")
	}
	var logBuf bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &logBuf}, &lockedWriter{w: &logBuf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		harness.Missing(t, "cannot start spamd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// spamd ends its children on SIGTERM; the group kill is for a
		// spamd that did not.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		if spamdPing(addr) {
			return addr
		}
		select {
		case <-exited:
			harness.Missing(t, "spamd exited at start: %s", lastLines(logBuf.String(), 5))
		default:
		}
		if time.Now().After(deadline) {
			harness.Missing(t, "spamd did not answer within 30 s: %s", lastLines(logBuf.String(), 5))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func spamdPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PING SPAMC/1.5\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.Contains(line, "PONG")
}

// TestSpamdReal is the guide's "--filter spam:localhost:783" against a
// real spamd.
func TestSpamdReal(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping spamd in -short mode")
	}
	addr := startSpamd(t)
	ctx := context.Background()

	spam := mustParse(t, "spam:"+addr, Server, time.Minute)
	c, e := message(t, gtube)
	r := spam.Run(ctx, c, e)
	if r.Outcome != Reject || r.Code != 550 || r.Enhanced != "5.7.1" || !strings.Contains(r.Text, "spam") {
		t.Errorf("spam: on GTUBE = %v; want reject 550 5.7.1 ...spam...", r)
	}
	if got := readFile(t, c); got != gtube {
		t.Errorf("spam: changed the content to %q", got)
	}
	c, e = message(t, testContent)
	if r := spam.Run(ctx, c, e); r.Outcome != OK {
		t.Errorf("spam: on a clean message = %v; want ok", r)
	}

	edit := mustParse(t, "spam-edit:"+addr, Server, time.Minute)
	c, e = message(t, gtube)
	if r := edit.Run(ctx, c, e); r.Outcome != OK {
		t.Errorf("spam-edit: on GTUBE = %v; want ok", r)
	}
	got := readFile(t, c)
	if !strings.Contains(got, "X-Spam-Flag: YES\r\n") || !strings.Contains(got, "GTUBE") {
		t.Errorf("spam-edit: content = %q; want spamd's rewrite with X-Spam-Flag: YES", got)
	}
	if strings.Contains(strings.ReplaceAll(got, "\r\n", ""), "\n") {
		t.Errorf("spam-edit: content has bare LF line endings")
	}
	c, e = message(t, testContent)
	if r := edit.Run(ctx, c, e); r.Outcome != OK {
		t.Errorf("spam-edit: on a clean message = %v; want ok", r)
	}
	if got := readFile(t, c); !strings.Contains(got, "X-Spam-Status: No") || !strings.Contains(got, "Hello Bob.") {
		t.Errorf("spam-edit: on a clean message, content = %q; want X-Spam-Status: No and the body", got)
	}
}

// fakeSpamd serves one scripted reply per connection and records the
// requests.
func fakeSpamd(t *testing.T, reply func(req string) string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				var head strings.Builder
				n := 0
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if v, ok := strings.CutPrefix(line, "Content-length: "); ok {
						n, _ = strconv.Atoi(strings.TrimSpace(v))
					}
					if line == "\r\n" {
						break
					}
				}
				body := make([]byte, n)
				if _, err := io.ReadFull(br, body); err != nil {
					return
				}
				out := reply(head.String() + string(body))
				if out == "HANG" {
					time.Sleep(5 * time.Second)
					return
				}
				io.WriteString(c, out)
			}()
		}
	}()
	return l.Addr().String()
}

func TestSpamdProtocol(t *testing.T) {
	var mu sync.Mutex
	var lastReq string
	const rewritten = "X-Spam-Status: No\nSubject: x\n\nbody\n"
	replies := map[string]string{
		"check-spam": "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 15.5 / 5.0\r\n\r\n",
		"check-ham":  "SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.1 / 5.0\r\n\r\n",
		"process": fmt.Sprintf("SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: False ; 0.1 / 5.0\r\n\r\n%s",
			len(rewritten), rewritten),
		"short":     "SPAMD/1.1 0 EX_OK\r\nContent-length: 500\r\n\r\nX-Spam: cut\r\n",
		"protocol":  "SPAMD/1.0 76 Bad header line: xyz\r\n\r\n",
		"garbage":   "HTTP/1.0 200 OK\r\n\r\n",
		"no-header": "SPAMD/1.1 0 EX_OK\r\n\r\n",
		"hang":      "HANG",
	}
	var mode string
	addr := fakeSpamd(t, func(req string) string {
		mu.Lock()
		defer mu.Unlock()
		lastReq = req
		return replies[mode]
	})
	tests := []struct {
		mode    string
		edit    bool
		want    Outcome
		content string // want, if not the original
	}{
		{"check-spam", false, Reject, ""},
		{"check-ham", false, OK, ""},
		{"process", true, OK, "X-Spam-Status: No\r\nSubject: x\r\n\r\nbody\r\n"},
		{"short", true, TempFail, ""},
		{"protocol", false, TempFail, ""},
		{"protocol", true, TempFail, ""},
		{"garbage", false, TempFail, ""},
		{"no-header", false, TempFail, ""},
		{"hang", false, TempFail, ""},
		{"hang", true, TempFail, ""},
	}
	for _, tt := range tests {
		mu.Lock()
		mode = tt.mode
		mu.Unlock()
		spec := "spam:" + addr
		if tt.edit {
			spec = "spam-edit:" + addr
		}
		c, e := message(t, testContent)
		r := mustParse(t, spec, Server, time.Second).Run(context.Background(), c, e)
		if r.Outcome != tt.want {
			t.Errorf("%s with reply %s = %v; want %v", spec, tt.mode, r, tt.want)
		}
		want := tt.content
		if want == "" {
			want = testContent
		}
		if got := readFile(t, c); got != want {
			t.Errorf("%s with reply %s: content = %q; want %q", spec, tt.mode, got, want)
		}
		if tt.mode == "check-spam" && (r.Code != 550 || r.Enhanced != "5.7.1" || !strings.Contains(r.Reason, "15.5 / 5.0")) {
			t.Errorf("spam: rejection = %v; want 550 5.7.1 with the score in the reason", r)
		}
	}
	mu.Lock()
	req := lastReq
	mu.Unlock()
	wantHead := fmt.Sprintf("PROCESS SPAMC/1.5\r\nContent-length: %d\r\n\r\n", len(testContent))
	if req != wantHead+testContent {
		t.Errorf("last request = %q; want %q", req, wantHead+testContent)
	}

	// Nobody listening, and a message too big to check.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	c, e := message(t, testContent)
	if r := mustParse(t, "spam:"+dead, Server, time.Second).Run(context.Background(), c, e); r.Outcome != TempFail {
		t.Errorf("spam: with no spamd = %v; want tempfail", r)
	}
	c, e = message(t, testContent+strings.Repeat("x", spamMaxSize))
	if r := mustParse(t, "spam:"+dead, Server, time.Second).Run(context.Background(), c, e); r.Outcome != OK {
		t.Errorf("spam: with a message over %d bytes = %v; want ok unchecked", spamMaxSize, r)
	}
}
