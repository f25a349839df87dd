package queue

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestAud12PIDFileFullDisk: a relay starting on a full spool disk could
// not write its pid file, and left the temporary file it had begun
// (".relaykeeper.pid.tmpPID", no room for its line) in the spool for
// good: nothing removes it, and each start that way (a supervisor's
// restarts) left one more.
func TestAud12PIDFileFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skip("mount tmpfs: " + err.Error())
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for _, err = fill.Write(make([]byte, 4096)); err == nil; _, err = fill.Write(make([]byte, 4096)) {
	}
	fill.Close()
	if err := WritePID(s); err == nil {
		t.Fatal("WritePID on a full disk: no error")
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasPrefix(de.Name(), PIDFile+".tmp") {
			t.Errorf("a failed pid file write left %s in the spool", de.Name())
		}
	}
}
