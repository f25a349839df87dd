package companion

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLockInstanceMissingDirectoryNamed: --state in a directory that does
// not exist said only "open DIR/state.pid: no such file or directory",
// a file the user never named.
func TestLockInstanceMissingDirectoryNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nodir")
	_, err := LockInstance(filepath.Join(dir, "state.pid"))
	if err == nil || !strings.Contains(err.Error(), "no directory "+dir) || !strings.Contains(err.Error(), "--state") {
		t.Errorf("err = %v; want it to name the missing directory %s and --state", err, dir)
	}
}
