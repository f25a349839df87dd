// Package pidfile writes the process id file of --pid-file, as E-MailRelay
// does: the file's own directory is made if it is missing (/run/NAME), and
// a file that cannot be written stops the start.
package pidfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// Check says, without writing anything, whether Write could write the file
// at path: for --check, which starts nothing, so that it refuses what the
// start would (a directory, a directory that cannot be made, a file or
// directory that may not be written). Its errors read as Write's. An empty
// path is fine.
func Check(path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("cannot write the pid file: open %s: %w", path, syscall.EISDIR)
	case err == nil:
		return wrap("cannot write the pid file: open "+path, syscall.Access(path, 2)) // W_OK
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cannot write the pid file: %w", err)
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// Write makes one level of directory: its parent must take it.
		return wrap("cannot make the pid file's directory: mkdir "+dir, dirWritable(filepath.Dir(dir)))
	}
	return wrap("cannot write the pid file: open "+path, dirWritable(dir))
}

// dirWritable says whether this process may make a file in the directory
// named path.
func dirWritable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.IsDir():
		return syscall.ENOTDIR
	}
	return syscall.Access(path, 2|1) // W_OK|X_OK
}

// wrap puts what was being done in front of err, the bare reason (an
// os.PathError's own path is already in what).
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", what, err)
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
