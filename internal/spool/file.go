package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"golang.org/x/sys/unix"
)

// openFile is os.OpenFile for the spool's regular files, without the
// netpoller: on Linux os.OpenFile offers every file to epoll, which costs a
// regular file two fcntl pairs and a failed epoll_ctl (five system calls
// on each of the several opens of every message). os.NewFile leaves a
// blocking descriptor out of the poller, for one fcntl.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// readFile is os.ReadFile through openFile, sized for an envelope: one
// read(2) and the one that finds the end.
func readFile(name string) ([]byte, error) {
	f, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 0, 2048)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// rename is os.Rename without its lstat of newname (which only guards
// against a directory there, never the case for a spool file's name).
func rename(oldname, newname string) error {
	for {
		err := syscall.Rename(oldname, newname)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
		}
		return nil
	}
}

// writeFile is os.WriteFile through openFile. The file gets the spool's
// owner (s.owner), as every file root makes in the spool does.
func (s *Spool) writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	s.chown(f)
	_, err = f.Write(data)
	if err1 := f.Close(); err == nil {
		err = err1
	}
	return err
}

// syncDir fsyncs the spool directory, which makes the renames and creations
// done in it durable.
func (s *Spool) syncDir() error { return s.syncPath(s.dir) }

// syncPath fsyncs a directory.
func (s *Spool) syncPath(dir string) error {
	if s.failDirSync != nil {
		return s.failDirSync
	}
	if s.noSync {
		return nil
	}
	defer s.observeSync(SyncDir, time.Now())
	return syncDirPath(dir)
}

// mkdirDurable makes dir and any parents it lacks, as os.MkdirAll does,
// and fsyncs the parent of each directory it made: the name of a new
// directory is an entry in its parent, which the new directory's own
// fsync does not make durable. Without it a power loss soon after the
// first start could take the spool or its journal, with every message
// acknowledged in them, to lost+found.
func mkdirDurable(dir string, perm os.FileMode) error {
	var made []string
	for d := filepath.Clean(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range slices.Backward(made) {
		if err := syncDirPath(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// faultSyncPath, if set, stands for the fsync of a directory, for tests.
var faultSyncPath func(dir string) error

// syncDirPath fsyncs a directory.
func syncDirPath(dir string) error {
	if faultSyncPath != nil {
		return faultSyncPath(dir)
	}
	return safefile.SyncDir(dir)
}

func (s *Spool) syncFile(f *os.File) error {
	if s.noSync {
		return nil
	}
	defer s.observeSync(SyncFile, time.Now())
	return f.Sync()
}

// syncNamed fsyncs the file at path.
func (s *Spool) syncNamed(path string) error {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.syncFile(f)
}

// What an fsync was of, for a SyncObserver.
const (
	SyncFile    = "file"
	SyncDir     = "directory"
	SyncJournal = "journal"
)

// SyncObserver is told how long each fsync took (the metrics' fsync
// latency). ObserveSync must not block: it runs before the client hears
// its reply.
type SyncObserver interface {
	ObserveSync(kind string, d time.Duration)
}

// ObserveSyncs makes o see every fsync from now on. Call it before the
// Spool is shared.
func (s *Spool) ObserveSyncs(o SyncObserver) { s.syncObs = o }

func (s *Spool) observeSync(kind string, start time.Time) {
	if s.syncObs != nil {
		s.syncObs.ObserveSync(kind, time.Since(start))
	}
}

// writeAtomic replaces path with data (see package safefile). The caller
// fsyncs the directory. The file gets the spool's owner (s.owner).
func (s *Spool) writeAtomic(path string, data []byte) error {
	return safefile.Replace(path, safefile.Options{Perm: s.filePerm(), Owner: s.owner, NoSync: s.noSync, NoDirSync: true},
		func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
}

// chown gives a file root created the spool's owner (safefile.DirOwner):
// a "queue" command, "submit" or sendmail run by root would otherwise
// leave root's files that the relay, running as its own user, cannot
// read: it would never deliver the message, and quarantine it at its next
// start.
func (s *Spool) chown(f *os.File) {
	s.owner.Chown(f)
	if s.shared {
		f.Chmod(s.filePerm())
	}
}

// filePerm is the mode of the spool's files: the relay's alone, or, in a
// spool shared through its group, the group's too (the relay opens a
// content file for reading and writing to lock it).
func (s *Spool) filePerm() os.FileMode {
	if s.shared {
		return 0o660
	}
	return 0o640
}

// sharedGroup is the owner a user who is not root gives the files it
// makes in the spool dir when the spool is shared through its group
// (docs/sendmail.md: mode 0770, local users in the relay's group): the
// group, so that the relay, whose group it is, may read them. Nil when
// the directory is not group-writable, its group is this process's own,
// or this process is no member of it.
func sharedGroup(dir string) *safefile.Owner {
	var st syscall.Stat_t
	if os.Geteuid() == 0 || syscall.Stat(dir, &st) != nil || st.Mode&0o020 == 0 || int(st.Gid) == os.Getegid() {
		return nil
	}
	groups, _ := os.Getgroups()
	if !slices.Contains(groups, int(st.Gid)) {
		return nil
	}
	return &safefile.Owner{UID: -1, GID: int(st.Gid)}
}

// lockContent opens a message's content file and takes its exclusive lock
// without waiting. It returns ErrBusy if another worker holds it and
// ErrNotFound if there is no content file.
func (s *Spool) lockContent(id string) (*os.File, error) {
	f, _, err := s.lockContentSize(id)
	return f, err
}

// lockContentSize is lockContent, with the size of the file it locked.
func (s *Spool) lockContentSize(id string) (*os.File, int64, error) {
	// O_NOFOLLOW: a symbolic link in the content's place (a filter's, or
	// a member of the spool's group's) would have the relay, run as
	// root, send the file it points to as the message.
	f, err := openFile(s.contentPath(id), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EISDIR) {
		return nil, 0, notRegular(id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, 0, ErrBusy
		}
		return nil, 0, fmt.Errorf("spool: lock %s: %w", id, err)
	}
	// The file may have been removed between open and lock by a worker that
	// held the lock and deleted the message.
	var st1, st2 syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st1) != nil || syscall.Stat(s.contentPath(id), &st2) != nil || st1.Ino != st2.Ino {
		f.Close()
		return nil, 0, ErrNotFound
	}
	if st1.Mode&syscall.S_IFMT != syscall.S_IFREG {
		// A named pipe would be read from for good.
		f.Close()
		return nil, 0, notRegular(id)
	}
	return f, st1.Size, nil
}

// quarantine moves whatever files a message has into the quarantine
// directory and says so in the log. Nothing there is delivered again. A
// file is never moved over one of the same name already there (an
// earlier message's, set aside before): that one would be lost. It
// reports whether every file was moved.
func (s *Spool) quarantine(id, why string) bool {
	var names, moved, left []string
	all := []string{id + ".content"}
	for _, suf := range stateSuffix {
		all = append(all, id+suf)
	}
	for _, n := range all {
		if _, err := os.Lstat(filepath.Join(s.dir, n)); err != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(s.dir, quarantineDir, n)); !errors.Is(err, os.ErrNotExist) {
			// Moving none of the message's files keeps it whole.
			s.log.Error("quarantine failed; message left in place: a file of its name is in the quarantine already",
				"id", id, "file", n, "reason", why)
			return false
		}
		names = append(names, n)
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(s.dir, n), filepath.Join(s.dir, quarantineDir, n)); err != nil {
			s.log.Error("quarantine failed; file left in place", "id", id, "file", n, "reason", why, "err", err)
			left = append(left, n)
			continue
		}
		moved = append(moved, n)
	}
	if err := s.syncDir(); err != nil {
		s.log.Error("quarantine: directory sync failed", "err", err)
	}
	qd, err := os.Open(filepath.Join(s.dir, quarantineDir))
	if err == nil {
		if !s.noSync {
			qd.Sync()
		}
		qd.Close()
	}
	if len(moved) == 0 {
		return false
	}
	s.log.Warn("message quarantined", "id", id, "reason", why, "files", moved, "left", left,
		"dir", filepath.Join(s.dir, quarantineDir))
	return len(left) == 0
}

// relock locks path's current inode and lets go of old, unless they are the
// same file.
func relock(path string, old *os.File) (*os.File, error) {
	var st1, st2 syscall.Stat_t
	if syscall.Fstat(int(old.Fd()), &st1) == nil && syscall.Stat(path, &st2) == nil && st1.Ino == st2.Ino {
		return old, nil
	}
	nf, err := openFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool: relock: %w", err)
	}
	if err := syscall.Flock(int(nf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		nf.Close()
		return nil, fmt.Errorf("spool: relock: %w", err)
	}
	old.Close()
	return nf, nil
}

// checkJournalDurable refuses a journal directory on a file system that a
// power loss empties (tmpfs, ramfs: .journal made a symlink or a mount
// point there, to spare the disk) while the spool itself is on one that
// keeps its files. A served message has no other copy than its record
// until a checkpoint writes its files: with the journal gone at the next
// boot, a message the client heard 250 for would be lost without a trace.
// A spool that is all on tmpfs keeps nothing across a boot anyway, and its
// journal is as good as its files.
func checkJournalDurable(journal, spoolDir string) error {
	var js, ss unix.Statfs_t
	if unix.Statfs(journal, &js) != nil || unix.Statfs(spoolDir, &ss) != nil {
		return nil // a journal that cannot be used fails when it is used
	}
	volatile := func(t int64) bool { return t == unix.TMPFS_MAGIC || t == unix.RAMFS_MAGIC }
	if volatile(int64(js.Type)) && !volatile(int64(ss.Type)) {
		return fmt.Errorf("spool: journal: %s is on a file system that does not survive a reboot (tmpfs), and the spool is not", journal)
	}
	return nil
}
