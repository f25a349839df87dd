// Package pidfile writes the process id file of --pid-file, as E-MailRelay
// does: the file's own directory is made if it is missing (/run/NAME), and
// a file that cannot be written stops the start.
package pidfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Write puts the process id, and a newline, in the file at path, making
// its directory (one level, as E-MailRelay's --pid-file does) if missing.
// An empty path writes nothing.
func Write(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return fmt.Errorf("cannot make the pid file's directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write the pid file: %w", err)
	}
	return nil
}

// Remove removes the file Write wrote, at exit, if it still holds this
// process's id; an empty path is none. A relay restarted by SIGTERM and a
// new start at once stops listening first and exits after its grace: by
// then the new relay has written its own id there, which stays.
func Remove(path string) {
	if path == "" {
		return
	}
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
