package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev23PostfixEnforcerHUPWhileStarting: a SIGHUP that reaches
// postfix-enforcer while it starts (a unit's ExecReload right after its
// start, logrotate's postrotate) must not end it. Its start asks postconf
// three times (own domains, mynetworks, canonical maps; up to 10 s each);
// SIGHUP was caught only after, so that one sent meanwhile killed it
// (SIGHUP's default). Here a postconf that takes 2 s is in PATH.
func TestRev23PostfixEnforcerHUPWhileStarting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	started := filepath.Join(dir, "postconf-started")
	writeFile(t, bin, "postconf", "#!/bin/sh\n: > "+started+"\nsleep 2\n", 0o755)
	logFile := writeFile(t, dir, "mail.log", "", 0o644)
	wl := writeFile(t, dir, "welcomelist", "# nobody is exempt\n", 0o644)
	args := enforcerArgs(logFile, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl,
		filepath.Join(dir, "bans.log"), "127.0.0.1:9")
	// postconf is not run without a main.cf (TestS27PostconfNotRunWithoutMainCF).
	conf := filepath.Join(dir, "postfix")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "main.cf", "", 0o644)
	p := harness.StartWith(t, harness.ProcOptions{Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "MAIL_CONFIG=" + conf}},
		harness.Binary(t), append([]string{"postfix-enforcer"}, args...)...)
	if !waitFor(15*time.Second, func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatalf("the fake postconf never ran:\n%s", p.Stderr())
	}
	p.Signal(syscall.SIGHUP)
	if !waitFor(20*time.Second, func() bool { return strings.Contains(p.Stderr(), "postfix-enforcer started") }) {
		code, err := p.Wait(time.Second)
		t.Fatalf("not started after a SIGHUP while starting (exit %d, %v):\n%s", code, err, p.Stderr())
	}
	if code, err := p.Wait(time.Second); err == nil {
		t.Fatalf("postfix-enforcer exited %d:\n%s", code, p.Stderr())
	}
}
