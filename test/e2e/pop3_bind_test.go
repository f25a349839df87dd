package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPOP3HonoursInterface: an unqualified --interface 127.0.0.1 binds the
// POP3 and admin servers there too, as E-MailRelay does; before, POP3
// listened on every address. 127.0.0.2 is another loopback address: a
// server bound to all addresses would answer there.
func TestPOP3HonoursInterface(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popPort, adminPort := harness.FreePort(t), harness.FreePort(t)
	startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", secrets,
		"--admin", fmt.Sprint(adminPort), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for _, port := range []int{popPort, adminPort} {
		harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", port), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("port %d answers on 127.0.0.2; want only 127.0.0.1 (--interface)", port)
		}
	}
}

// TestPOP3ThrottleAcrossConnections is issue 10's attack on the built
// binary: twenty wrong passwords over parallel connections, then the right
// one, which must be refused.
func TestPOP3ThrottleAcrossConnections(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popPort := harness.FreePort(t)
	startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", secrets,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", popPort)
	harness.WaitPort(t, addr, 5*time.Second)

	// login says USER and PASS and returns the reply to PASS, or "" if
	// the session ended first.
	login := func(pass string, tries int) []string {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return nil
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		if _, err := br.ReadString('\n'); err != nil {
			return nil
		}
		var replies []string
		for range tries {
			fmt.Fprintf(c, "USER alice\r\n")
			if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
				return append(replies, strings.TrimSpace(l))
			}
			fmt.Fprintf(c, "PASS %s\r\n", pass)
			l, err := br.ReadString('\n')
			if err != nil {
				return replies
			}
			replies = append(replies, strings.TrimSpace(l))
		}
		return replies
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { login("wrong", 2) })
	}
	wg.Wait()
	got := login("s3cret", 1)
	if len(got) == 0 || strings.HasPrefix(got[0], "+OK") {
		t.Fatalf("the right password after 20 parallel wrong ones: %q; want a refusal", got)
	}
	t.Logf("after the guesses, the right password got %q", got)
}

// TestFrontendsRemoteClients: a client at a TEST-NET address (in a network
// namespace) is turned away by POP3 and the admin HTTP listener without
// --remote-clients, as by SMTP, and served with it. Not parallel: it uses
// the same TEST-NET addresses as TestRemoteClients.
func TestFrontendsRemoteClients(t *testing.T) {
	ns := netns(t)
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	pw := writeFile(t, t.TempDir(), "admin.password", "pw\n", 0o600)
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote-clients=%v", remote), func(t *testing.T) {
			popPort, httpPort := harness.FreePort(t), harness.FreePort(t)
			args := []string{"--as-server", "--interface", hostIP, "--spool-dir", t.TempDir(),
				"--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", secrets,
				"--admin-http", fmt.Sprintf("%s:%d", hostIP, httpPort), "--admin-password-file", pw}
			if remote {
				args = append(args, "--remote-clients")
			}
			startRelay(t, hostIP, args...)
			harness.WaitPort(t, fmt.Sprintf("%s:%d", hostIP, popPort), 5*time.Second)
			greeting, _ := run("ip", "netns", "exec", ns, "timeout", "10", "bash", "-c",
				fmt.Sprintf("exec 3<>/dev/tcp/%s/%d; head -n 1 <&3", hostIP, popPort))
			status, _ := run("ip", "netns", "exec", ns, "timeout", "10", "bash", "-c",
				fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d; printf 'GET /api/status HTTP/1.0\r\nHost: %s\r\nAuthorization: Bearer pw\r\n\r\n' >&3; head -n 1 <&3`,
					hostIP, httpPort, hostIP))
			wantPOP, wantHTTP := "-ERR remote clients are not allowed", "HTTP/1.0 403"
			if remote {
				wantPOP, wantHTTP = "+OK", "HTTP/1.0 200"
			}
			if !strings.HasPrefix(greeting, wantPOP) {
				t.Errorf("POP3 greeting to %s = %q; want %q", nsIP, greeting, wantPOP)
			}
			if !strings.HasPrefix(status, wantHTTP) {
				t.Errorf("admin HTTP status for %s = %q; want %s", nsIP, status, wantHTTP)
			}
		})
	}
}
