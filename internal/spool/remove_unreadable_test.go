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
