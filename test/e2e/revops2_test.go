package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevOps2SystemdUnitVerifies: the shipped unit, with ExecStart pointing
// at the binary under test, passes "systemd-analyze verify" (unknown or
// misspelt directives, a wrong section, a bad ExecStart, a sandbox setting
// this systemd does not know all fail it). Nothing checked the unit before:
// TestMakeInstall only looks for its ExecStart line.
func TestRevOps2SystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		harness.Missing(t, "systemd-analyze is not installed (scripts/test-deps.sh)")
	}
	unit, err := os.ReadFile("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/sbin/relaykeeper", harness.Binary(t))
	if text == string(unit) {
		t.Fatalf("etc/relaykeeper.service does not start /usr/local/sbin/relaykeeper:\n%s", unit)
	}
	path := filepath.Join(t.TempDir(), "relaykeeper.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// --man=no: the man pages are not installed here (TestManPagesRender
	// renders them).
	out, err := exec.Command(bin, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify etc/relaykeeper.service: %v\n%s", err, out)
	}
}
