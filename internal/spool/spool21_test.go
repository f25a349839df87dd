package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpool21SymlinkContent: a content file that is a symbolic link (made
// by anyone who may write in the spool: a filter, a member of the spool's
// group) was followed by a claim: the relay, run as root, sent the file it
// points to (/etc/shadow, a key) to the smarthost as the message. A
// content file must be the spool's own regular file, as a named pipe is
// refused already.
func TestSpool21SymlinkContent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	os.Remove(s.ContentPath(id))
	if err := os.Symlink(secret, s.ContentPath(id)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(id)
	if err == nil {
		rc, _, cerr := c.Content()
		var got []byte
		if cerr == nil {
			got, _ = io.ReadAll(rc)
			rc.Close()
		}
		c.Unlock()
		t.Fatalf("Claim of a message whose content is a symbolic link succeeded; it would send %q", got)
	}
	if !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Claim(content a symlink) = %v; want an error saying it is not a regular file", err)
	}
	if rc, err := s.OpenContent(id); err == nil {
		rc.Close()
		t.Errorf("OpenContent followed the symbolic link (queue show --body would print the target)")
	}
}
