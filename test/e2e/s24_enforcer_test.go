package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestS24EnforcerSighupDuringReplace: `postfix-enforcer -r` waits up to 15
// s for the instance it replaces; a unit's ExecReload (SIGHUP) in that
// wait ended the new instance, leaving no enforcer at all once the old one
// had gone.
func TestS24EnforcerSighupDuringReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := writeFile(t, dir, "mail.log", "", 0o644)
	wl := writeFile(t, dir, "welcomelist", "# nobody is exempt\n", 0o644)
	args := append([]string{"postfix-enforcer"}, enforcerArgs(logFile, filepath.Join(dir, "state"),
		filepath.Join(dir, "sender_access"), wl, filepath.Join(dir, "bans.log"), "127.0.0.1:9")...)
	old := harness.Start(t, harness.Binary(t), args...)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(old.Stderr(), "postfix-enforcer started") }) {
		t.Fatalf("not started:\n%s", old.Stderr())
	}
	// Stopped, the old instance takes the replacement's SIGTERM only when
	// continued: the replacement waits for its lock meanwhile.
	old.Signal(syscall.SIGSTOP)
	repl := harness.Start(t, harness.Binary(t), append(args, "-r")...)
	time.Sleep(time.Second)
	repl.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	old.Signal(syscall.SIGCONT)
	if code, err := old.Wait(15 * time.Second); err != nil {
		t.Fatalf("the old instance did not stop: %v", err)
	} else if code != 0 {
		t.Logf("old instance exit %d", code)
	}
	if !waitFor(15*time.Second, func() bool { return strings.Contains(repl.Stderr(), "postfix-enforcer started") }) {
		code, err := repl.Wait(time.Second)
		t.Fatalf("the replacement did not start after a SIGHUP in its wait (exit %d, %v):\n%s", code, err, repl.Stderr())
	}
	repl.Signal(syscall.SIGTERM)
	if code, err := repl.Wait(15 * time.Second); err != nil || code != 0 {
		t.Errorf("replacement: exit %d, %v, want 0 on SIGTERM:\n%s", code, err, repl.Stderr())
	}
}
