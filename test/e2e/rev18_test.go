package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// waitPidFile waits for the relay's --pid-file to hold pid: it is written
// once the listeners are bound, a moment after the port is seen listening.
func waitPidFile(t *testing.T, path string, pid int) {
	t.Helper()
	var b []byte
	var err error
	if !waitFor(5*time.Second, func() bool {
		b, err = os.ReadFile(path)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid)
	}) {
		t.Fatalf("pid file %s = %q, %v; want %d", path, b, err, pid)
	}
}

// TestRev18SecondStartKeepsPidFile: a second start of the relay while one
// runs (an init script's start run twice, a unit started by hand) cannot
// bind the SMTP port and exits; it wrote its own pid into the --pid-file
// before trying to listen and removed the file on its way out, so the
// running relay's pid file was gone and the init script's stop and status
// found nothing to signal. The file is now written once the listeners are
// bound.
func TestRev18SecondStartKeepsPidFile(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "relaykeeper.pid")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--pid-file", pidFile, "--interface", "127.0.0.1", "--spool-dir", spool)
	waitPidFile(t, pidFile, r.current().PID())
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--pid-file", pidFile, "--interface", "127.0.0.1",
		"--spool-dir", spool, "--port", strconv.Itoa(r.port))
	if code == 0 {
		t.Fatalf("a second start on the same port: exit 0; want a failure; stderr:\n%s", errOut)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(r.current().PID()) {
		t.Errorf("after a second start failed: pid file = %q, %v; want the running relay's %d (stderr of the second: %s)",
			b, err, r.current().PID(), errOut)
	}
}
