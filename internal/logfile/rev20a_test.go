package logfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// relaykeeper --check opens the log files as a start does, creating those
// missing; docs/operations.md has it run before a restart, by an
// administrator, as root. A log file it created was root's, 0640, and the
// relay, which runs as its own user (the unit's User=relaykeeper), could
// not open it: it did not start. A new log file belongs to its directory's
// owner (the unit's LogsDirectory), as the spool's files do.
func TestRev20aNewLogFileBelongsToDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "root, to create a file in another user's directory")
	}
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4321, 4322); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "relaykeeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "relaykeeper.log"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 4321 || st.Gid != 4322 {
		t.Errorf("new log file owned by %d:%d; want its directory's owner 4321:4322", st.Uid, st.Gid)
	}
}
