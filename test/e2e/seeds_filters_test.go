package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// startSpamd runs a private SpamAssassin spamd on a loopback port, or skips
// if spamd is not installed (scripts/test-deps.sh does not install it: the
// filter package's own tests do, and test this more deeply).
func startSpamd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("spamd")
	if err != nil {
		harness.Missing(t, "spamd is not installed (apt-get install spamd)")
	}
	port := harness.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	args := []string{"--listen", addr, "--pidfile", filepath.Join(dir, "spamd.pid"), "--syslog", "stderr",
		"--nouser-config", "--local", "--max-children", "2", "--helper-home-dir", dir}
	if os.Geteuid() == 0 {
		args = append(args, "--username", "nobody")
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		harness.Missing(t, "cannot start spamd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	if !waitFor(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		harness.Missing(t, "spamd did not come up within 30 s")
	}
	return addr
}

// TestSeedFilterSpamd is the guide's "emailrelay --as-server --filter
// spam:localhost:783" (on a port of the test's own): GTUBE is refused at the
// final dot, a clean message is stored.
func TestSeedFilterSpamd(t *testing.T) {
	t.Parallel()
	spamd := startSpamd(t)
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", "spam:"+spamd, "--filter-timeout", "30",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	gtube := "Subject: gtube\n\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, gtube)
	if err == nil || tx.Final.code() != 550 {
		t.Errorf("GTUBE through spam: = %v, %q; want 550", err, tx.Final)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("a perfectly ordinary note"))
	if ids := messageIDs(t, spool); len(ids) != 1 {
		t.Errorf("spool holds %d messages; want only the clean one", len(ids))
	}
}

// TestSeedPOPOnly is the guide's "emailrelay --pop --no-smtp --log
// --close-stderr" (with a secrets file and port of the test's own): no SMTP
// listener, and POP serves the spool.
func TestSeedPOPOnly(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "pop.auth")
	os.WriteFile(secrets, []byte("server plain alice s3cret\n"), 0o600)
	popPort := harness.FreePort(t)
	smtpPort := harness.FreePort(t)
	p := harness.StartWith(t, harness.ProcOptions{WaitAddr: fmt.Sprintf("127.0.0.1:%d", popPort)}, harness.Binary(t),
		"--pop", "--no-smtp", "--log", "--close-stderr", "--pop-auth", secrets, "--pop-port", fmt.Sprint(popPort),
		"--interface", "127.0.0.1", "--interface", fmt.Sprintf("pop=127.0.0.1:%d", popPort),
		"--port", fmt.Sprint(smtpPort), "--spool-dir", t.TempDir())
	_ = p
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", smtpPort), time.Second); err == nil {
		c.Close()
		t.Errorf("an SMTP listener answers on %d despite --no-smtp", smtpPort)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", popPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "+OK") {
		t.Errorf("POP greeting = %q; want +OK", buf[:n])
	}
}

// TestCopyFilterToPOPMailboxes: E-MailRelay's copy: filter with
// --pop-by-name: a message arrives in every user's mailbox, and each user
// reads their own copy over POP (Python's poplib).
func TestCopyFilterToPOPMailboxes(t *testing.T) {
	t.Parallel()
	harness.Need(t, "python3") // for poplib
	secrets := writeFile(t, t.TempDir(), "pop.auth", "server plain alice s3cret\nserver plain bob s3cret\n", 0o600)
	spool := t.TempDir()
	os.Mkdir(filepath.Join(spool, "alice"), 0o750)
	os.Mkdir(filepath.Join(spool, "bob"), 0o750)
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", "copy:", "--pop", "--pop-by-name", "--pop-auth", secrets,
		"--pop-port", fmt.Sprint(popPort), "--interface", "127.0.0.1", "--interface", fmt.Sprintf("pop=127.0.0.1:%d", popPort),
		"--spool-dir", spool)
	mustSend(t, r.addr(), "carol@example.org", []string{"team@example.net"}, message("for everyone"))
	if ids := messageIDs(t, spool); len(ids) != 0 {
		t.Errorf("the main spool keeps %v; copy: should have taken the message over", ids)
	}
	for _, user := range []string{"alice", "bob"} {
		py := fmt.Sprintf(`
import poplib
p = poplib.POP3("127.0.0.1", %d, timeout=10)
p.user(%q); p.pass_("s3cret")
n, _ = p.stat()
print("count", n)
print([l.decode() for l in p.retr(1)[1] if l.startswith(b"Subject:")][0])
p.quit()
`, popPort, user)
		out, err := exec.Command("python3", "-c", py).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "count 1") || !strings.Contains(string(out), "Subject: for everyone") {
			t.Errorf("%s's mailbox: %v\n%s", user, err, out)
		}
	}
}
