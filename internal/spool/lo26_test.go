package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLo26RestoreSyncsFiles: queue restore renamed a quarantined
// message's files back into the spool and fsynced both directories, but
// never the files, which an administrator has typically just edited
// (docs/queue.md: repair, then restore). A power loss after "restored"
// could leave the content empty or the envelope cut. Restore now fsyncs
// the content and the envelope before it renames them.
func TestLo26RestoreSyncsFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	q := filepath.Join(dir, quarantineDir)
	if err := os.MkdirAll(q, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{id + ".content", id + ".envelope"} {
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(q, n)); err != nil {
			t.Fatal(err)
		}
	}
	// The administrator's repair.
	if err := os.WriteFile(filepath.Join(q, id+".content"), []byte("Subject: repaired\r\n\r\nbody\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	log := &syncLog{}
	s.ObserveSyncs(log)
	if _, _, err := s.Restore(id); err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, k := range log.take() {
		if k == SyncFile {
			files++
		}
	}
	if files != 2 {
		t.Errorf("Restore fsynced %d files; want 2 (the content and the envelope)", files)
	}
}
