// Package logfile is a log file that can be reopened by name, so that
// logrotate may rename it and signal the process (SIGHUP) instead of
// copying and truncating it under a writer that keeps its offset.
//
// Writes and Reopen are serialised: a line is written whole to either the
// old file or the new one. Without the signal a moved or removed file is
// noticed within a second, at the next write. If reopening fails, writes go on to the old file
// and Reopen returns the error; nothing written is lost.
//
// As in E-MailRelay's --log-file, "%d" in the name stands for the date
// (YYYYMMDD) and "%h" for the hour (HH), in local time; the first write
// after either changes goes to a new file.
package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// File appends to the file at a path.
type File struct {
	pattern string
	now     func() time.Time // nil when the name has no %d or %h

	mu     sync.Mutex // guards f, path and looked
	f      *os.File
	path   string
	looked time.Time // when Write last looked for the file moved away
}

// lookEvery is how often Write looks whether the file was moved away or
// removed (logrotate without a signal: no systemd to send it, a
// container): the next line after that goes to a new file at the path.
var lookEvery = time.Second

// Open opens (creating it, mode 0640) path for appending.
func Open(path string) (*File, error) {
	return openAt(path, time.Now)
}

func openAt(pattern string, now func() time.Time) (*File, error) {
	l := &File{pattern: pattern}
	if strings.Contains(pattern, "%d") || strings.Contains(pattern, "%h") {
		l.now = now
	}
	l.path = l.name()
	f, err := open(l.path)
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

// name is the file's name now.
func (l *File) name() string {
	if l.now == nil {
		return l.pattern
	}
	return Name(l.pattern, l.now())
}

// Name is the name pattern gives at t: "%d" the date (YYYYMMDD) and "%h"
// the hour (HH), in t's location.
func Name(pattern string, t time.Time) string {
	return strings.NewReplacer("%d", t.Format("20060102"), "%h", t.Format("15")).Replace(pattern)
}

// AppendSync appends p to the file pattern names at t, in one write, and
// syncs and closes it: for a log written seldom, whose lines must be on
// disk before anything else happens, and which logrotate may move at any
// time (each call opens the file by name). A file it creates is given to
// its directory's owner, as Open's are.
func AppendSync(pattern string, t time.Time, p []byte) error {
	f, err := open(Name(pattern, t))
	if err != nil {
		return err
	}
	_, err = f.Write(p)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	return nil
}

// open opens path for appending. A file it creates is given to its
// directory's owner when the process may (root): the relay runs as its
// own user, and a log file that root made (relaykeeper --check run by an
// administrator, a start by hand) must not keep it from opening its log.
func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
	if err == nil {
		safefile.DirOwner(filepath.Dir(path)).Chown(f)
		return f, nil
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	return f, nil
}

// Path is the file's name (the current one, for a dated name).
func (l *File) Path() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.path
}

// Write appends p, in one write call: to a new file if the date or hour in
// the name has changed (or to the old one, if that cannot be opened).
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.now != nil {
		if name := l.name(); name != l.path {
			if f, err := open(name); err == nil {
				l.f.Close()
				l.f, l.path = f, name
			}
		}
	}
	if now := time.Now(); now.Sub(l.looked) >= lookEvery {
		l.looked = now
		if moved(l.f, l.path) {
			if f, err := open(l.path); err == nil {
				l.f.Close()
				l.f = f
			}
		}
	}
	return l.f.Write(p)
}

// moved reports whether path no longer names the open file f.
func moved(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err != nil || !os.SameFile(fi, pi)
}

// Reopen opens the path anew, which after a rename is a new file, and
// closes the old one. On error the old file stays in use.
func (l *File) Reopen() error {
	name := l.name()
	f, err := open(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f, l.path = f, name
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
