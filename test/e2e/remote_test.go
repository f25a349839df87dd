package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Documentation addresses (RFC 5737 TEST-NET-3): not loopback, not
// private, so the relay must treat the namespace's client as remote.
const (
	hostIP = "203.0.113.1"
	nsIP   = "203.0.113.2"
)

// run runs a short command, bounded by 30 seconds, and returns its combined
// output and exit status (-1 if it did not exit by itself).
func run(name string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // a loaded machine may take a second to drain the pipes
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

// netns creates a network namespace joined to the host by a veth pair,
// hostIP/24 on the host side and nsIP/24 inside, both deleted at the end of
// the test, and returns the namespace's name.
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		harness.Missing(t, "remote-client tests create a network namespace and need root")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		harness.Missing(t, "remote-client tests need the ip command (iproute2)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	suffix := hex.EncodeToString(b)
	ns, hostIf, nsIf := "rke2e-"+suffix, "rkh"+suffix, "rkn"+suffix
	ip := func(args ...string) {
		t.Helper()
		if out, code := run(ipCmd, args...); code != 0 {
			t.Fatalf("ip %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { run(ipCmd, "netns", "del", ns) })
	ip("link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns)
	t.Cleanup(func() { run(ipCmd, "link", "del", hostIf) })
	ip("addr", "add", hostIP+"/24", "dev", hostIf)
	ip("link", "set", hostIf, "up")
	ip("-n", ns, "addr", "add", nsIP+"/24", "dev", nsIf)
	ip("-n", ns, "link", "set", nsIf, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	return ns
}

var swaksRefused = regexp.MustCompile(`(?m)^<\*\* +554 5\.7\.1 `)

// TestRemoteClients: a client outside loopback and private networks (in a
// network namespace, at a TEST-NET address) hears "554 5.7.1" at connect
// without --remote-clients, logged as a connect-stage reject; with
// --remote-clients its message is accepted.
func TestRemoteClients(t *testing.T) {
	t.Parallel()
	ns := netns(t)
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		harness.Missing(t, "swaks is not installed (run scripts/test-deps.sh)")
	}
	for _, remote := range []bool{false, true} {
		name := "without --remote-clients"
		args := []string{"--as-server", "--interface", hostIP, "--spool-dir", t.TempDir()}
		if remote {
			name = "with --remote-clients"
			// An outside client may send only to relay_domains.
			cfg := filepath.Join(t.TempDir(), "relaykeeper.toml")
			if err := os.WriteFile(cfg, []byte("[policy]\nrelay_domains = [\"example.net\"]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--remote-clients", "--config", cfg)
		}
		t.Run(name, func(t *testing.T) {
			r := startRelay(t, hostIP, args...)
			out, code := run("ip", "netns", "exec", ns, swaks, "--server", r.addr(),
				"--from", "far@example.org", "--to", "bob@example.net", "--timeout", "10")
			if !remote {
				if code == 0 || !swaksRefused.MatchString(out) {
					t.Errorf("swaks from %s: exit %d; want a failure with \"554 5.7.1\" at connect; output:\n%s", nsIP, code, out)
				}
				e := r.waitEvent("reject", 5*time.Second, nil)
				if !strings.HasPrefix(e.Get("client"), nsIP+":") || e.Get("stage") != "connect" || !strings.HasPrefix(e.Get("reply"), "554 5.7.1 ") {
					t.Errorf("reject line = %v; want client=%s:PORT stage=connect reply=\"554 5.7.1 ...\"", e.Fields, nsIP)
				}
				if n := len(r.events("accept")) + len(r.events("connect")); n != 0 {
					t.Errorf("mail log has %d connect/accept lines for a refused client; want 0", n)
				}
				checkSpoolEmpty(t, r.spool)
				return
			}
			if code != 0 || !swaksQueued.MatchString(out) {
				t.Errorf("swaks from %s with --remote-clients: exit %d; want 0 and \"250 2.0.0 OK: queued as ID\"; output:\n%s", nsIP, code, out)
			}
			e := r.waitEvent("accept", 5*time.Second, nil)
			if !strings.HasPrefix(e.Get("client"), nsIP+":") {
				t.Errorf("accept line client=%s; want %s:PORT", e.Get("client"), nsIP)
			}
			if got := idsIn(spoolFiles(t, r.spool), "content", "envelope"); len(got) != 1 {
				t.Errorf("spool holds %d ready messages; want 1", len(got))
			}
			// The same outside client relaying elsewhere: never an
			// open relay, whatever --remote-clients lets in.
			out, code = run("ip", "netns", "exec", ns, swaks, "--server", r.addr(),
				"--from", "far@example.org", "--to", "victim@elsewhere.example", "--timeout", "10")
			if code == 0 || !strings.Contains(out, "554 5.7.1 <victim@elsewhere.example>: Relay access denied") {
				t.Errorf("swaks from %s to elsewhere.example: exit %d; want 554 5.7.1 Relay access denied; output:\n%s", nsIP, code, out)
			}
			if got := idsIn(spoolFiles(t, r.spool), "content", "envelope"); len(got) != 1 {
				t.Errorf("spool holds %d ready messages after the relay probe; want still 1", len(got))
			}
		})
	}
}

// TestLoopbackClientsAccepted: without --remote-clients, clients on
// 127.0.0.0/8 are let in.
func TestLoopbackClientsAccepted(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for _, local := range []string{"127.0.0.1", "127.0.0.2"} {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		conn, err := d.Dial("tcp", r.addr())
		if err != nil {
			t.Fatalf("dial from %s: %v", local, err)
		}
		c := &smtpClient{conn: conn, r: newReader(conn)}
		greet, err := c.read()
		if err != nil || greet.code() != 220 {
			t.Errorf("greeting to %s = %q, %v; want 220", local, greet, err)
			conn.Close()
			continue
		}
		c.cmd("EHLO loopback.e2e.test")
		tx, err := c.send("alice@example.org", []string{"bob@example.net"}, message("from "+local))
		conn.Close()
		if err != nil || tx.Final.code() != 250 {
			t.Errorf("message from %s: %v, final reply %q; want 250", local, err, tx.Final)
		}
		r.waitEvent("accept", 5*time.Second, func(e *maillog.Entry) bool { return strings.HasPrefix(e.Get("client"), local+":") })
	}
	if n := len(r.events("reject")); n != 0 {
		t.Errorf("mail log has %d reject lines; want 0", n)
	}
}
