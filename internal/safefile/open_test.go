package safefile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOpenRefusesWhatBlocks: a named pipe is refused at once (os.Open waits
// for a writer), as is a directory; a file and /dev/null read as they are.
func TestOpenRefusesWhatBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("Open(a named pipe) = %v; want it refused as a named pipe", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open(a named pipe) still waiting after 5 s")
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("Open(a directory) = %v; want it refused", err)
	}
	file := filepath.Join(dir, "table")
	os.WriteFile(file, []byte("a OK\n"), 0o644)
	for path, want := range map[string]string{file: "a OK\n", "/dev/null": ""} {
		f, err := Open(path)
		if err != nil {
			t.Errorf("Open(%s) = %v", path, err)
			continue
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != want {
			t.Errorf("reading %s = %q, %v; want %q", path, b, err, want)
		}
	}
}
