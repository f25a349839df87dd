package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
	"golang.org/x/sys/unix"
)

// TestDur18JournalOnTmpfsRefused: .journal made a symlink to tmpfs (to
// spare the disk) while the spool is on a disk. A served message's only
// copy is its journal record until the checkpoint writes its files; a
// power loss in that second empties tmpfs, and the message the client
// heard 250 for was gone at the next start without a trace (seen with
// bin/relaykeeper: five messages served, kill -9, tmpfs emptied, restart:
// none delivered, none in quarantine). The journal is refused instead,
// and every message syncs its own files.
func TestDur18JournalOnTmpfsRefused(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		harness.Missing(t, "a test directory not on tmpfs (TMPDIR)")
	}
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		harness.Missing(t, "a tmpfs at /dev/shm")
	}
	elsewhere, err := os.MkdirTemp("/dev/shm", "dur18-journal")
	if err != nil {
		harness.Missing(t, "a writable /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(elsewhere) })
	if err := os.Symlink(elsewhere, filepath.Join(dir, journalDir)); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.OpenJournal()
	if err == nil {
		j.f.Close()
		t.Fatalf("a journal on tmpfs under a spool on disk was opened; want it refused")
	}
	if !strings.Contains(err.Error(), "tmpfs") {
		t.Errorf("error %q does not say why", err)
	}
	if s.journal.Load() != nil {
		t.Errorf("the spool journals after the refusal")
	}

	// A spool all on tmpfs keeps its journal: its files are no better.
	s2, err := Open(elsewhere, nil)
	if err != nil {
		t.Fatal(err)
	}
	j2 := openJournal(t, s2)
	j2.f.Close()
}
