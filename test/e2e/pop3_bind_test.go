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
