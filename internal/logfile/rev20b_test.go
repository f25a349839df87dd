package logfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRev20bNewFileBelongsToTheDirectorysOwner: docs/operations.md has
// the administrator run "relaykeeper --check" with the unit's switches
// before a restart, as root; it created a log file that did not exist
// yet (a first start, or a new day's %d file) owned by root, mode 0640,
// in the relay's own log directory (the unit's LogsDirectory=, owned by
// the relaykeeper user), and the relay could then not open it: "open
// .../mail.log: permission denied", the unit failed to start. A file
// root creates in a directory that another user owns is now that user's.
func TestRev20bNewFileBelongsToTheDirectorysOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Log("not root: a file cannot be created for another user here, which is the case this covers")
		return
	}
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "mail.log"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(filepath.Join(dir, "mail.log"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
		t.Errorf("the new log file belongs to %d:%d; want the directory's owner, %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
