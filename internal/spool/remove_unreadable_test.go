package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveUnreadable: a torn envelope is removed with its content; an
// envelope that could not be read for another reason (here a directory in
// its place: EISDIR, as EIO or EMFILE would be) is left alone, since it may
// be whole.
func TestRemoveUnreadable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	torn := newMessage(t, s, "Subject: torn\r\n\r\nbody\r\n")
	os.WriteFile(filepath.Join(dir, torn+".envelope"), []byte("garbage\n"), 0o644)
	if st, err := s.RemoveUnreadable(torn); err != nil || st != Ready {
		t.Errorf("RemoveUnreadable(torn) = %v, %v; want Ready, nil", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, torn+".content")); !os.IsNotExist(err) {
		t.Errorf("the torn message's content is still there: %v", err)
	}

	unread := newMessage(t, s, "Subject: unread\r\n\r\nbody\r\n")
	env := filepath.Join(dir, unread+".envelope")
	os.Remove(env)
	os.Mkdir(env, 0o755)
	if _, err := s.RemoveUnreadable(unread); err == nil {
		t.Errorf("RemoveUnreadable removed a message whose envelope could not be read (not a parse error)")
	}
	if _, err := os.Stat(filepath.Join(dir, unread+".content")); err != nil {
		t.Errorf("its content: %v; want it kept", err)
	}
}

// TestRemoveOrphanClaim: a claimed envelope (.busy) whose content file is
// gone has no forwarder (a live one holds the content locked, and a
// removal unlinks the envelope first), so queue delete removes it, as it
// removes any other envelope without content. Before, only a restart's
// recovery could.
func TestRemoveOrphanClaim(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: orphan\r\n\r\nbody\r\n")
	os.Rename(filepath.Join(dir, id+".envelope"), filepath.Join(dir, id+".envelope.busy"))
	os.Remove(filepath.Join(dir, id+".content"))
	if st, err := s.RemoveUnreadable(id); err != nil || st != Claimed {
		t.Errorf("RemoveUnreadable(orphan .busy) = %v, %v; want Claimed, nil", st, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, id+".*")); len(m) != 0 {
		t.Errorf("left %v", m)
	}
}
