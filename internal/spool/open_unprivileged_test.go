package spool

import (
	"os"
	"os/exec"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOpenUnprivileged: a user who may read the spool but not write in it
// (an unprivileged "relaykeeper queue list") opens it although its
// quarantine directory cannot be made.
func TestOpenUnprivileged(t *testing.T) {
	if dir := os.Getenv("RK_OPEN_CHILD"); dir != "" {
		if _, err := Open(dir, nil); err != nil {
			t.Fatalf("Open as uid %d: %v", os.Getuid(), err)
		}
		return
	}
	dir, _ := os.MkdirTemp("/tmp", "rkopen")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	if out, err := runAsNobody(t, "TestOpenUnprivileged", "RK_OPEN_CHILD="+dir); err != nil {
		t.Errorf("Open by a user who may not write in the spool: %v\n%s", err, out)
	}
}

// runAsNobody runs the test named test again in a child process as user
// nobody, with env added to its environment, and returns its output.
func runAsNobody(t *testing.T, test, env string) ([]byte, error) {
	t.Helper()
	if os.Getuid() != 0 {
		harness.Missing(t, "needs root to make the other owner")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		harness.Missing(t, "no setpriv")
	}
	exe, _ := os.Executable()
	c := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe, "-test.run=^"+test+"$")
	c.Env = append(os.Environ(), env)
	return c.CombinedOutput()
}
