// Package safefile replaces files so that a crash leaves either the old
// file or the new one, whole, never a mixture or nothing: the new content
// goes to a temporary file beside the old one, is fsynced, renamed over it,
// and the directory is fsynced so that the rename itself is durable.
//
// Temporary files are named NAME.RANDOM.tmp in the file's directory; a
// crash can leave one behind, and the spool's recovery removes such files
// (other users may ignore them: the file they replace is intact). Every
// error is returned, a failed directory fsync too: after it the rename may
// not survive a crash, so the caller must not report the file as written.
package safefile

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Options say how Replace writes. The zero Options keeps the old file's
// permission bits and fsyncs everything.
type Options struct {
	// Perm is the new file's permission bits; zero keeps those of the
	// file being replaced, which must then exist.
	Perm fs.FileMode
	// KeepOwner gives the new file the owner and group of the file it
	// replaces, where the process may: only root may give a file away,
	// and anyone else's attempt is ignored (the file is then theirs).
	KeepOwner bool
	// Owner, if not nil, gives the new file this owner and group
	// instead (root only; ignored where the process may not).
	Owner *Owner
	// NoSync skips every fsync, for a spool that asked not to sync
	// (tests on a throwaway directory). The replacement is then atomic
	// but not durable.
	NoSync bool
	// NoDirSync leaves the directory fsync to the caller, who replaces
	// several files and then calls SyncDir once before counting any of
	// them as written.
	NoDirSync bool
}

// Owner is a file's owner and group.
type Owner struct{ UID, GID int }

// DirOwner is the owner that root gives the files it makes in dir: dir's
// own, when that is another user (a service's user, whose files root
// changes or adds to: root's would be unreadable to it). Nil when the
// process is not root or dir is root's: nothing to give away.
func DirOwner(dir string) *Owner {
	var st syscall.Stat_t
	if os.Geteuid() != 0 || syscall.Stat(dir, &st) != nil || st.Uid == 0 && st.Gid == 0 {
		return nil
	}
	return &Owner{UID: int(st.Uid), GID: int(st.Gid)}
}

// Chown gives f to o, if o is not nil; where the process may not, nothing
// changes.
func (o *Owner) Chown(f *os.File) {
	if o != nil {
		f.Chown(o.UID, o.GID)
	}
}

// Replace replaces the file at path with what fill writes. If fill or any
// step before the rename fails, path is untouched and the temporary file
// removed.
func Replace(path string, opts Options, fill func(w io.Writer) error) error {
	perm := opts.Perm
	var owner *syscall.Stat_t
	if perm == 0 || opts.KeepOwner {
		fi, err := os.Stat(path)
		switch {
		case err == nil:
			if perm == 0 {
				perm = fi.Mode().Perm()
			}
			owner, _ = fi.Sys().(*syscall.Stat_t)
		case perm == 0 || !os.IsNotExist(err):
			return err
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	switch {
	case opts.Owner != nil:
		tmp.Chown(opts.Owner.UID, opts.Owner.GID)
	case owner != nil:
		tmp.Chown(int(owner.Uid), int(owner.Gid)) // see Options.KeepOwner
	}
	bw := bufio.NewWriterSize(tmp, 64<<10)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if !opts.NoSync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("safefile: fsync %s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	if opts.NoSync || opts.NoDirSync {
		return nil
	}
	return SyncDir(dir)
}

// WriteFile replaces the file at path with data, with permission bits
// perm, as Replace does.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Replace(path, Options{Perm: perm}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir fsyncs a directory, which makes the creations, renames and
// removals done in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("safefile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("safefile: fsync %s: %w", dir, err)
	}
	return nil
}
