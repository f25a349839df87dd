package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestLo26RecoveryLeavesOtherProgramsFiles: with the spool in a
// directory other programs use too (E-MailRelay's guide runs
// "--spool-dir /tmp"), recovery moved their old report.content and
// app.envelope into .quarantine as torn messages. It now sets aside only
// files named as a message is, by relaykeeper or by E-MailRelay.
func TestLo26RecoveryLeavesOtherProgramsFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	files := map[string]bool{ // name: set aside
		"report.content":                      false,
		"app.envelope":                        false,
		"cache.1.content":                     false,
		"emailrelay.x.1.2.content":            false,
		"emailrelay.123.1700000000.1.content": true,
		"0123456789ABCDEF.content":            true,
		"FEDCBA9876543210.envelope":           true,
	}
	for n := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("not mail\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	for n, aside := range files {
		_, inSpool := os.Lstat(filepath.Join(dir, n))
		_, inQuarantine := os.Lstat(filepath.Join(dir, quarantineDir, n))
		if aside && (inSpool == nil || inQuarantine != nil) {
			t.Errorf("%s: not set aside; want it in quarantine", n)
		}
		if !aside && (inSpool != nil || inQuarantine == nil) {
			t.Errorf("%s: moved (report %v); want it left where it is", n, rep)
		}
	}
	if len(rep.Quarantined) != 3 || rep.InUse != 4 {
		t.Errorf("report %v; want 3 quarantined, 4 left alone", rep)
	}
}
