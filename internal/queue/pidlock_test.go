package queue

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPIDLockOtherOwner: a relay once started as root (a test run,
// a unit before User= was added) leaves .relaykeeper.pid.lock behind, root's,
// 0644, for ever (nothing removes it). The relay that later runs as its
// own user may write the spool (it replaces the pid file by a rename, as
// before the lock), but opens the lock O_RDWR: EACCES, so WritePID fails,
// the relay only warns, and queue commands never notify it.
func TestPIDLockOtherOwner(t *testing.T) {
	if dir := os.Getenv("RK_PIDLOCK_CHILD"); dir != "" {
		s, err := spool.Open(dir, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if err := WritePID(s); err != nil {
			t.Fatalf("WritePID as uid %d: %v", os.Getuid(), err)
		}
		return
	}
	if os.Getuid() != 0 {
		harness.Missing(t, "needs root to make the other owner")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		harness.Missing(t, "no setpriv")
	}
	dir, _ := os.MkdirTemp("/tmp", "rkpidlock")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	if _, err := spool.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { os.Chmod(p, 0o777); return nil })
	s, _ := spool.Open(dir, nil)
	if err := WritePID(s); err != nil { // root's run
		t.Fatal(err)
	}
	RemovePID(s)
	exe, _ := os.Executable()
	c := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe, "-test.run=TestPIDLockOtherOwner", "-test.v")
	c.Env = append(os.Environ(), "RK_PIDLOCK_CHILD="+dir)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Errorf("a relay running as nobody on a spool it may write: %v\n%s", err, out)
	}
}
