package spool

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAud4QuarantineNameTaken: recovery set a broken message aside with
// os.Rename, which replaces a file of the same name already in the
// quarantine (an earlier message's, set aside before) and, when it cannot
// move a file (here: a directory of that name is in the way), still
// logged "message quarantined" and reported the message quarantined, so
// that the mail log said so while the file stayed in the spool. Now the
// earlier file is kept, and what is left in place is not reported.
func TestAud4QuarantineNameTaken(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, quarantineDir)
	// An orphan content file whose name the quarantine already holds.
	const kept = "AAAA000000000001"
	os.WriteFile(filepath.Join(q, kept+".content"), []byte("earlier\r\n"), 0o640)
	os.WriteFile(filepath.Join(dir, kept+".content"), []byte("later\r\n"), 0o640)
	// A broken envelope whose quarantine name is taken by a directory.
	const stuck = "AAAA000000000002"
	os.WriteFile(filepath.Join(dir, stuck+".content"), []byte("x\r\n"), 0o640)
	os.WriteFile(filepath.Join(dir, stuck+".envelope"), []byte("garbage\n"), 0o640)
	os.Mkdir(filepath.Join(q, stuck+".envelope"), 0o750)

	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(q, kept+".content")); string(b) != "earlier\r\n" {
		t.Errorf("the quarantined %s.content was replaced by a later one: %q", kept, b)
	}
	for _, id := range []string{kept, stuck} {
		if slices.Contains(rep.Quarantined, id) {
			t.Errorf("%s reported quarantined (the mail log says so), but its files are left in the spool", id)
		}
	}
	// Nothing of the message whose envelope could not go was moved: it
	// stays whole in the spool.
	if _, err := os.Stat(filepath.Join(dir, stuck+".content")); err != nil {
		t.Errorf("%s.content moved without its envelope: %v", stuck, err)
	}
}
