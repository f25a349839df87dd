package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud2PidFileUnwritableStopsStart: a --pid-file that cannot be written
// (here, two directory levels are missing: E-MailRelay makes one) stops
// the start with a message naming the switch, as E-MailRelay's does.
// relaykeeper logged "cannot write pid file" and ran on without it, so an
// init script's stop and status found nothing to signal.
func TestAud2PidFileUnwritableStopsStart(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "missing", "run", "relay.pid")
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--interface", "127.0.0.1",
		"--port", strconv.Itoa(harness.FreePort(t)), "--spool-dir", t.TempDir(), "--pid-file", pidFile)
	if code != 2 || !strings.Contains(errOut, "--pid-file: "+pidFile) {
		t.Fatalf("exit %d, stderr %q; want exit 2 and a message naming --pid-file and %s", code, errOut, pidFile)
	}
}
