// Package logfile is a log file that can be reopened by name, so that
// logrotate may rename it and signal the process (SIGHUP) instead of
// copying and truncating it under a writer that keeps its offset.
//
// Writes and Reopen are serialised: a line is written whole to either the
// old file or the new one. If reopening fails, writes go on to the old file
// and Reopen returns the error; nothing written is lost.
package logfile

import (
	"fmt"
	"os"
	"sync"
)

// File appends to the file at a path.
type File struct {
	path string

	mu sync.Mutex // guards f
	f  *os.File
}

// Open opens (creating it, mode 0640) path for appending.
func Open(path string) (*File, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	return f, nil
}

// Path is the file's name.
func (l *File) Path() string { return l.path }

// Write appends p, in one write call.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path anew, which after a rename is a new file, and
// closes the old one. On error the old file stays in use.
func (l *File) Reopen() error {
	f, err := open(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
