package safefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// leftovers lists the files in dir other than want.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]bool{}
	for _, w := range want {
		keep[w] = true
	}
	var extra []string
	for _, de := range des {
		if !keep[de.Name()] {
			extra = append(extra, de.Name())
		}
	}
	return extra
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(path, []byte(content), 0o640); err != nil {
			t.Fatalf("WriteFile(%q): %v", content, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("after WriteFile(%q) the file holds %q, %v", content, got, err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("mode = %v; want 0640", got)
	}
	if extra := leftovers(t, dir, "f"); extra != nil {
		t.Errorf("files left in the directory: %q", extra)
	}
}

func TestReplaceFailingFillLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Replace(path, Options{}, func(w io.Writer) error {
		io.WriteString(w, "half of the new")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Replace = %v; want fill's error", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("after a failed Replace the file holds %q; want the old content", got)
	}
	if extra := leftovers(t, dir, "f"); extra != nil {
		t.Errorf("files left in the directory: %q", extra)
	}
}

func TestReplaceKeepsPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old"), 0o604); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, Options{KeepOwner: true}, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o604 {
		t.Errorf("mode = %v; want the old file's 0604", got)
	}
	// Keeping permissions needs a file to keep them from.
	err = Replace(filepath.Join(dir, "missing"), Options{}, func(io.Writer) error { return nil })
	if !os.IsNotExist(err) {
		t.Errorf("Replace of a missing file with Perm 0 = %v; want a not-exist error", err)
	}
	if err := Replace(filepath.Join(dir, "new"), Options{Perm: 0o600, KeepOwner: true}, func(io.Writer) error { return nil }); err != nil {
		t.Errorf("Replace of a missing file with KeepOwner = %v; want it created", err)
	}
}

func TestReplaceInMissingDirectory(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600); err == nil {
		t.Errorf("WriteFile in a missing directory succeeded")
	}
}

// TestSyncDirError: a directory that cannot be synced is an error, not a
// silent success.
func TestSyncDirError(t *testing.T) {
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("SyncDir of a missing directory = nil; want an error")
	}
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
}
