package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// greetLine connects to addr from the local address from, sends send (if
// any) and returns the first line the server writes, without its line
// ending, and the connection, which the test closes at its end.
func greetLine(t *testing.T, addr, from, send string) (string, net.Conn) {
	t.Helper()
	c, err := dialPlain(addr, from)
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	if send != "" {
		c.Write([]byte(send))
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return "read: " + err.Error(), c
	}
	return strings.TrimRight(line, "\r\n"), c
}

// TestRevWeb4POP3ConnectionLimit: POP3 sessions were unbounded. One client
// that opened 20,000 connections and sent nothing held them for the
// 10-minute idle timeout: 220 MB of memory, and every file descriptor the
// relay had, so that SMTP clients were connected by the kernel and never
// greeted ("pop3: accept failed ... too many open files"). POP3 now takes
// [policy] max_connections and max_connections_per_ip as SMTP does,
// counted apart.
func TestRevWeb4POP3ConnectionLimit(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startPolicyRelay(t, "[policy]\nmax_connections_per_ip = 3\n", "--pop", "--pop-auth", secrets,
		"--interface", "pop="+popAddr)
	harness.WaitPort(t, popAddr, 5*time.Second)
	var held []net.Conn
	for i := range 3 {
		line, c := greetLine(t, popAddr, "127.0.0.1", "")
		if !strings.HasPrefix(line, "+OK") {
			t.Fatalf("POP3 connection %d from 127.0.0.1: %q; want the +OK greeting", i+1, line)
		}
		held = append(held, c)
	}
	want := "-ERR [SYS/TEMP] too many connections from 127.0.0.1; try again later"
	if line, _ := greetLine(t, popAddr, "127.0.0.1", ""); line != want {
		t.Errorf("fourth POP3 connection from 127.0.0.1: %q; want %q", line, want)
	}
	if line, _ := greetLine(t, popAddr, "127.0.0.2", ""); !strings.HasPrefix(line, "+OK") {
		t.Errorf("POP3 connection from 127.0.0.2: %q; want the +OK greeting (the limit is per address)", line)
	}
	// SMTP counts its own clients: still served.
	mustDial(t, r.addr(), "127.0.0.1")
	held[0].Close()
	if !waitFor(5*time.Second, func() bool {
		line, c := greetLine(t, popAddr, "127.0.0.1", "")
		c.Close()
		return strings.HasPrefix(line, "+OK")
	}) {
		t.Errorf("after one of the three closed, 127.0.0.1 is still refused")
	}
}

// TestRevWeb4AdminConnectionLimit: the admin line protocol kept every
// connection for its 10-minute idle timeout, password or not, and the
// HTTP API every keep-alive connection (a 401 included) for 2 minutes,
// without limit. Each now serves at most 20 connections from one address
// (100 in all); the next one is told so and closed.
func TestRevWeb4AdminConnectionLimit(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, adminPort := adminRelay(t, up.Addr(), "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	textAddr := fmt.Sprintf("127.0.0.1:%d", adminPort)
	const get = "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	for i := range 20 {
		if line, _ := greetLine(t, textAddr, "127.0.0.1", "pid\r\n"); strings.HasPrefix(line, "error") {
			t.Fatalf("admin connection %d: %q", i+1, line)
		}
		if line, _ := greetLine(t, httpAddr, "127.0.0.1", get); line != "HTTP/1.1 200 OK" {
			t.Fatalf("HTTP connection %d: %q", i+1, line)
		}
	}
	want := "error: too many connections from 127.0.0.1; try again later"
	if line, _ := greetLine(t, textAddr, "127.0.0.1", ""); line != want {
		t.Errorf("21st admin connection from 127.0.0.1: %q; want %q", line, want)
	}
	if line, _ := greetLine(t, httpAddr, "127.0.0.1", ""); line != "HTTP/1.1 503 Service Unavailable" {
		t.Errorf("21st HTTP connection from 127.0.0.1: %q; want a 503", line)
	}
	if line, _ := greetLine(t, textAddr, "127.0.0.3", "pid\r\n"); strings.HasPrefix(line, "error") {
		t.Errorf("admin connection from 127.0.0.3: %q; want served (the limit is per address)", line)
	}
}
