package logfile

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var _ io.WriteCloser = (*File)(nil)

// TestReopenAfterRename does what logrotate does: rename, then reopen; the
// old name's lines stay in the renamed file and new lines go to a new file.
func TestReopenAfterRename(t *testing.T) {
	defer func(d time.Duration) { lookEvery = d }(lookEvery)
	lookEvery = time.Hour // the signal alone (TestS25MovedWithoutSignal)
	path, l := openMailLog(t)
	io.WriteString(l, "before\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(l, "between\n") // still the old file: nothing is lost
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(l, "after\n")
	for file, want := range map[string]string{path + ".1": "before\nbetween\n", path: "after\n"} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q; want %q", filepath.Base(file), got, want)
		}
	}
}

// TestReopenFailureKeepsOldFile: a directory gone away leaves the writer on
// the file it had.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	os.Mkdir(sub, 0o755)
	path := filepath.Join(sub, "x.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Rename(sub, sub+".old"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen with the directory gone = nil; want an error")
	}
	if _, err := io.WriteString(l, "kept\n"); err != nil {
		t.Fatalf("Write after a failed Reopen = %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(sub+".old", "x.log"))
	if string(got) != "kept\n" {
		t.Errorf("old file = %q; want %q", got, "kept\n")
	}
}

// TestS25MovedWithoutSignal: logrotate's postrotate signals the relay
// through systemctl alone; without systemd (a container, another init)
// the relay wrote on into the renamed file for good, and into a deleted
// one once it was compressed. A file moved away or removed is now noticed
// at the next write after lookEvery: the line goes to a new file.
func TestS25MovedWithoutSignal(t *testing.T) {
	defer func(d time.Duration) { lookEvery = d }(lookEvery)
	lookEvery = 0
	path, l := openMailLog(t)
	io.WriteString(l, "before\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(l, "after the rename\n")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	io.WriteString(l, "after the removal\n")
	for file, want := range map[string]string{path + ".1": "before\n", path: "after the removal\n"} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q; want %q", filepath.Base(file), got, want)
		}
	}
}

// openMailLog opens mail.log in a new directory, closed when the test ends.
func openMailLog(t *testing.T) (string, *File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mail.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path, l
}
