package spool

import (
	"os"

	"golang.org/x/sys/unix"
)

// A new segment is filled with zeros, synced, before it takes records,
// which then overwrite the zeros. An fdatasync after a write that grows a
// file must also write its inode (the new size), and on a journaling file
// system commit that journal; after a write into blocks that are already
// written it is the data and a cache flush. A synced 4 KiB record
// (BenchmarkJournalSync) took 624-899 µs appended and 266-327 over zeros on
// a journalled ext4, 180-222 and 95-140 on this machine's ext4 without a
// journal: at one session the journal's fdatasync is on every message's way
// to its 250. PostgreSQL zero-fills its WAL segments for the same reason.
//
// The fill is written and synced at once, at a rotation, and the sessions'
// syncs wait behind it: at most 4 MiB, since 16 made 100 KiB messages at
// one session a fifth slower. A segment's records end where its zeros begin
// (readRecord). Records that do not fit are written past the zeros, growing
// the file as before.
const (
	preallocMin = 256 << 10
	preallocMax = 4 << 20
)

// preallocSize is how much of a new segment to fill: twice what the active
// one holds (a checkpoint rotates once a second), within bounds.
// Called with j.mu not held.
func (j *Journal) preallocSize() int64 {
	j.mu.Lock()
	used := j.size
	j.mu.Unlock()
	return min(max(2*used, preallocMin), preallocMax)
}

// preallocate fills f with zeros from off to preallocSize. Nothing is
// filled where it would not help or would cost memory: NFS, tmpfs (whose
// "disk" is memory, and whose fdatasync is free), a spool that does not
// sync; nor more than an eighth of the free space. A failure (a full
// disk) leaves f as it was: the records are then appended.
func (j *Journal) preallocate(f *os.File, off int64) {
	if j.nfs || j.s.noSync || j.tmpfs {
		return
	}
	size := j.preallocSize()
	// The zeros save time, not worth the room messages need: at most
	// an eighth of what the file system has free (a 16 MiB fill, the old bound, on a
	// disk with 20 free left 4 for the sessions, which heard 452).
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) == nil {
		size = min(size, off+int64(st.Bavail)*int64(st.Bsize)/8)
	}
	zeros := make([]byte, 64<<10)
	for at := off; at < size; {
		n := min(int64(len(zeros)), size-at)
		if _, err := f.WriteAt(zeros[:n], at); err != nil {
			f.Truncate(off)
			return
		}
		at += n
	}
}

// onTmpfs says whether the file system of d keeps its files in memory.
func onTmpfs(d *os.File) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(d.Fd()), &st) == nil && st.Type == unix.TMPFS_MAGIC
}
