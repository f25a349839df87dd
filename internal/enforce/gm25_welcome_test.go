package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGM25WelcomelistRewrittenInPlace: an editor that keeps the file's
// inode (nano, "cat > welcomelist") truncates it, then writes it. A look
// between the two read an empty list and put it in force: a welcomelisted
// client's refusal in the next seconds banned it. The empty version is
// refused (the list in force stays), and the version written after it is
// read. A file empty from the start is an empty list, as before.
func TestGM25WelcomelistRewrittenInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcomelist")
	writeWelcome(t, path, "10.0.0.0/8\n")
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("10.1.2.3")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if changed, err := w.Reload(); changed || err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Reload() of the truncated file = %v, %v; want false and an error", changed, err)
	}
	if !w.Welcome(client, "") {
		t.Errorf("Welcome(%s) = false while the file is rewritten; want the list in force", client)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("10.0.0.0/8\n192.0.2.1\n")
	f.Close()
	if changed, err := w.Reload(); !changed || err != nil {
		t.Errorf("Reload() of the written file = %v, %v; want true, nil", changed, err)
	}
	if !w.Welcome(client, "") || !w.Welcome(netip.MustParseAddr("192.0.2.1"), "") {
		t.Error("the version written after the truncation is not in force")
	}
	// A comment empties it.
	writeWelcome(t, path, "# nobody\n")
	if changed, err := w.Reload(); !changed || err != nil || w.Welcome(client, "") {
		t.Errorf("Reload() of a comment only = %v, %v, welcome %v; want an empty list", changed, err, w.Welcome(client, ""))
	}
	empty := filepath.Join(t.TempDir(), "empty")
	writeWelcome(t, empty, "")
	if e, err := OpenWelcomelist(empty); err != nil || e.Welcome(client, "") {
		t.Errorf("OpenWelcomelist(an empty file) = %v; want an empty list", err)
	}
}
