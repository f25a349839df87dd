package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// The journal lets concurrent acceptances share one fdatasync (group
// commit). Each accepted message is appended to it, content and envelope
// in one record; the sessions whose records are written wait together for
// one fdatasync of the journal, then hear 250. The message's own files are
// written as before, but without fsync: they are made durable in the
// background once a second, by a syncfs(2) of the spool's file system,
// after which the journal segment that covered them is removed. After a
// power loss, Recover rebuilds from the journal whatever the files lost.
//
// Segments are files in .journal/ named by a sequence number. A live
// process holds an exclusive flock on its segment, so Recover (in any
// process) replays only the segments of processes that have died.
const (
	journalDir = ".journal"
	// journalMaxContent: larger messages take the classic path (fsync of
	// each file, rename, directory fsync), so that one message never
	// holds the journal, or memory, for long.
	journalMaxContent = 1 << 20
	// checkpointEvery is how often the background makes the files of
	// journalled messages durable and drops the segment.
	checkpointEvery = time.Second
	// writeOutGrace is how long after a segment is closed to new
	// records its served messages still have to be delivered before
	// the checkpoint writes them out: a message accepted just before
	// the segment closed is usually forwarded within it, and writing
	// it out costs two files made and removed. (ServedWindow counts it.)
	writeOutGrace = 500 * time.Millisecond
)

// errJournalClosed makes a commit fall back to the classic path.
var errJournalClosed = errors.New("spool: journal closed")

// Journal is the spool's write-ahead journal of acceptances; see above.
type Journal struct {
	s    *Spool
	dir  string
	boot string

	// syncMu is held by the one session that runs fdatasync for a batch,
	// and by rotate; the others queue on it and usually find their
	// record synced when they get it.
	syncMu sync.Mutex
	synced uint64 // records known durable; guarded by syncMu
	broken error  // a failed fdatasync; guarded by syncMu

	mu      sync.Mutex // guards the fields below
	f       *os.File   // the active segment, locked
	size    int64      // f's size
	segNum  uint64
	written uint64 // records appended so far
	// segStart is written when the active segment began.
	segStart uint64
	closed   bool
	// inflight counts the acceptances appended to the active segment
	// that have not yet settled (renamed their envelope, or been put
	// in the table of served messages): a checkpoint waits for them
	// before it writes out and syncs what the segment covers.
	inflight *sync.WaitGroup
	// old are segments checkpointed but not yet removed, because
	// writing out their served messages failed (a full disk); they
	// stay, locked, until a checkpoint succeeds.
	old []oldSegment
	// served counts the records of messages served from memory in the
	// active segment, and oldServed those in segments not yet removed:
	// what a checkpoint, or a replay after a kill, must write out as
	// files, for which room keeps space and inodes free.
	served, oldServed usage
	room              room

	// fsDir is held open for the journal's life: syncfs(2) reports a
	// write-back error only to descriptors opened before it happened, so
	// a directory opened afresh for each checkpoint would miss an error
	// hit by background write-back between two checkpoints.
	fsDir *os.File
	// nfs: the spool is on NFS, where write(2) may report an earlier
	// write-back failure as ENOSPC or EDQUOT, which then closes the
	// journal like any other write error.
	nfs bool
	// tmpfs: the spool is in memory, where preallocate does not fill.
	tmpfs bool
	// keep, once a sync has failed, stops the checkpoints: the segments
	// stay, for the replay at the next start (see markUnsynced).
	keep atomic.Bool
	// lost, with keep: the active segment is no longer named in the
	// spool (lose): the files written out are the only copy a restart
	// finds, so each write-out is synced.
	lost atomic.Bool

	grace   time.Duration // writeOutGrace; tests set it to 0
	quit    chan struct{} // closed when Run is told to stop: the grace ends
	batches atomic.Uint64 // fdatasyncs done for commits
	bufs    sync.Pool     // *[]byte, for encoding records
}

// RunJournal opens the journal and runs it (Journal.Run) until stop is
// called, which ends it and waits for it, its last checkpoint done; a
// second call returns at once. A journal that cannot be opened is
// logged, and every message then syncs its own files; stop does nothing.
func (s *Spool) RunJournal() (stop func()) {
	j, err := s.OpenJournal()
	if err != nil {
		s.log.Warn("no spool journal: every message syncs its own files", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := j.Run(ctx); err != nil {
			s.log.Error("spool journal", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// OpenJournal starts group commit: from now on Writer.Commit journals
// small messages. Call Recover before, so that an old journal is replayed,
// and run Journal.Run, which makes the files durable and ends the journal.
func (s *Spool) OpenJournal() (*Journal, error) {
	dir := filepath.Join(s.dir, journalDir)
	if err := mkdirDurable(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: journal: %w", err)
	}
	if o := s.owner; o != nil {
		// Made by root perhaps: the relay, under its own user, replays
		// and retires what is in it.
		os.Chown(dir, o.UID, o.GID)
	}
	if err := checkJournalDurable(dir, s.dir); err != nil {
		return nil, err
	}
	j := &Journal{s: s, dir: dir, boot: s.boot, grace: writeOutGrace, quit: make(chan struct{})}
	fsDir, err := os.Open(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: journal: %w", err)
	}
	j.fsDir = fsDir
	var st unix.Statfs_t
	j.nfs = unix.Fstatfs(int(fsDir.Fd()), &st) == nil && st.Type == unix.NFS_SUPER_MAGIC
	j.tmpfs = onTmpfs(fsDir)
	f, num, size, err := j.newSegment(0)
	if err != nil {
		fsDir.Close()
		return nil, err
	}
	j.f, j.segNum, j.size, j.inflight = f, num, size, new(sync.WaitGroup)
	s.journal.Store(j)
	return j, nil
}

// bootID names the running kernel's boot. A journal written under another
// boot may describe files that a power loss took away; one written under
// this boot, by a process that died, describes files that are all still in
// the page cache.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// newSegment creates, locks and syncs the segment after num, with its
// header, and syncs the journal directory, so that records appended to it
// are found after a power loss.
func (j *Journal) newSegment(after uint64) (*os.File, uint64, int64, error) {
	num := after + 1
	if after == 0 {
		num = uint64(time.Now().UnixNano())
	}
	for {
		name := filepath.Join(j.dir, fmt.Sprintf("%020d.log", num))
		// Not O_APPEND: records are written at the journal's own end
		// (pwrite), into the zeros that preallocate put there.
		f, err := openFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if os.IsExist(err) {
			num++
			continue
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("spool: journal: %w", err)
		}
		fail := func(err error) (*os.File, uint64, int64, error) {
			f.Close()
			os.Remove(name)
			return nil, 0, 0, fmt.Errorf("spool: journal: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return fail(err)
		}
		j.s.chown(f)
		head := (&record{typ: recHeader, boot: j.boot}).marshal()
		if _, err := f.Write(head); err != nil {
			return fail(err)
		}
		j.preallocate(f, int64(len(head)))
		if err := j.s.syncFile(f); err != nil {
			return fail(err)
		}
		if err := j.s.syncPath(j.dir); err != nil {
			return fail(err)
		}
		return f, num, int64(len(head)), nil
	}
}

type oldSegment struct {
	f   *os.File
	num uint64
}

// usage is what served messages' records hold: bytes and messages.
type usage struct{ bytes, n int64 }

// room is what the spool's file system had free when last asked
// (statfs), less what the journal has appended since.
type room struct {
	at            time.Time
	bytes, inodes int64
	bsize         int64
	noInodes      bool // the file system does not count inodes
}

// roomSlack is how much more than it needs the journal must have found
// free to go on without asking the file system again, for up to
// roomTrust: other writers (files of the classic path, other processes)
// take room too.
const (
	roomSlack = 64 << 20
	roomTrust = 100 * time.Millisecond
)

// roomFor says whether the spool's file system has room for a record of
// n bytes and, after it, for writing out as files every message the
// journal serves, this one too if served: each a content file and an
// envelope, rounded up to whole blocks, two inodes. Without that room a
// kill would leave records that the replay cannot write out (their
// segment kept, the disk full of it, none of them delivered), so a served
// message takes the classic path instead, whose files need the room only
// once, and any other commit is refused (452) rather than take that room.
// Called with j.mu held.
func (j *Journal) roomFor(n int64, served bool) error {
	u := usage{j.served.bytes + j.oldServed.bytes, j.served.n + j.oldServed.n}
	if served {
		u = usage{u.bytes + n, u.n + 1}
	}
	if u.n == 0 {
		return nil
	}
	r := &j.room
	need := func() (int64, int64) {
		return n + u.bytes + 2*u.n*r.bsize, 2*u.n + 4
	}
	b, in := need()
	if time.Since(r.at) > roomTrust || r.bytes < b+roomSlack || !r.noInodes && r.inodes < in+1024 {
		var st unix.Statfs_t
		if err := unix.Fstatfs(int(j.fsDir.Fd()), &st); err != nil {
			return nil // unknown: the writes will tell
		}
		r.at, r.bsize = time.Now(), max(int64(st.Bsize), 512)
		r.bytes, r.inodes, r.noInodes = int64(st.Bavail)*int64(st.Bsize), int64(st.Ffree), st.Files == 0
		b, in = need()
	}
	if r.bytes < b || !r.noInodes && r.inodes < in {
		return fmt.Errorf("spool: the journal keeps room to write out the %d messages it serves (%d bytes): %w", u.n, u.bytes, syscall.ENOSPC)
	}
	r.bytes -= n
	return nil
}

// append writes one record to the active segment and returns its number,
// for waitSynced.
func (j *Journal) append(r *record) (uint64, error) {
	seq, _, _, err := j.appendRec(r, false)
	return seq, err
}

// errEndsInZero: a record whose last octet is zero is not journaled
// (appendAt); its message gets files of its own, as when the journal is
// closed.
var errEndsInZero = fmt.Errorf("%w: record ends in a zero octet", errJournalClosed)

// appended is where appendAccepted put a record.
type appended struct {
	seq uint64 // its number, for waitSynced
	seg uint64 // the segment's number
	// settled is called once the message has settled: the segment's
	// checkpoint waits for it.
	settled func()
	f       *os.File // the segment, open until settled
	end     int64    // the record's end in f
}

// appendAccepted appends an acceptance.
func (j *Journal) appendAccepted(r *record) (appended, error) {
	if n := r.payloadLen(); n > maxPayload {
		// The reader takes no record this long (a damaged LENGTH):
		// journaled, the message would be lost at the next start. A
		// small message gets an envelope this large from
		// virtual_alias_maps (a thousand recipients of an alias of a
		// thousand); it gets files of its own instead.
		return appended{}, fmt.Errorf("%w: %d octets", errRecordTooLarge, n)
	}
	a, wg, err := j.appendAt(r, true)
	if err != nil {
		return appended{}, err
	}
	a.settled = wg.Done
	return a, nil
}

func (j *Journal) appendRec(r *record, hold bool) (uint64, uint64, *sync.WaitGroup, error) {
	a, wg, err := j.appendAt(r, hold)
	return a.seq, a.seg, wg, err
}

func (j *Journal) appendAt(r *record, hold bool) (appended, *sync.WaitGroup, error) {
	bp, _ := j.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b, err := r.marshalTo(*bp)
	if err != nil {
		return appended{}, nil, fmt.Errorf("spool: journal: %w", err)
	}
	if b[len(b)-1] == 0 {
		// A record cut short by a crash ends in the zeros of the
		// sectors it did not write (readRecord): one whose own last
		// octet is zero (a content that ends in NULs, as BDAT's may),
		// damaged later, would read as such a torn tail and be dropped
		// quietly. It takes the classic path instead.
		return appended{}, nil, errEndsInZero
	}
	defer func() {
		if cap(b) <= 256<<10 {
			// Kept for the next record; a big one goes to the GC.
			*bp = b
			j.bufs.Put(bp)
		}
	}()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return appended{}, nil, errJournalClosed
	}
	if r.typ != recDone && !j.nfs {
		if err := j.roomFor(int64(len(b)), r.typ == recServed); err != nil {
			return appended{}, nil, err
		}
	}
	// One pwrite(2) per record at the journal's end, under j.mu: records
	// stay whole and in order.
	write := func(b []byte) (int, error) { return j.f.WriteAt(b, j.size) }
	if faultAppend != nil {
		write = func(b []byte) (int, error) { return faultAppend(j.f, b, j.size) }
	}
	if _, err := write(b); err != nil {
		if (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && !j.nfs {
			// A full disk: cut off what part of the record went in,
			// and the journal goes on once there is room again.
			if j.f.Truncate(j.size) == nil {
				return appended{}, nil, fmt.Errorf("spool: journal write: %w", err)
			}
		}
		// Part of the record may be there: anything appended after it
		// would be behind a torn record, where replay stops reading. So
		// the journal takes nothing more; commits take the classic path.
		j.closed = true
		j.s.journal.CompareAndSwap(j, nil)
		return appended{}, nil, fmt.Errorf("spool: journal write: %w", err)
	}
	j.written++
	j.size += int64(len(b))
	if r.typ == recServed {
		j.served.bytes += int64(len(b))
		j.served.n++
	}
	if hold {
		j.inflight.Add(1)
	}
	return appended{seq: j.written, seg: j.segNum, f: j.f, end: j.size}, j.inflight, nil
}

// waitSynced returns once record seq is durable: either a batch that
// another session synced included it, or this session syncs every record
// written so far, for itself and for everyone queued behind it.
func (j *Journal) waitSynced(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.broken != nil {
		return j.broken
	}
	if j.synced >= seq {
		return nil
	}
	j.mu.Lock()
	upto, f, num := j.written, j.f, j.segNum
	j.mu.Unlock()
	if err := j.s.syncData(f); err != nil {
		// After a failed fdatasync the kernel may have dropped the dirty
		// pages (the "fsyncgate" lesson): nothing in this journal can be
		// trusted any more, so every later commit takes the classic path.
		j.broken = fmt.Errorf("spool: journal fdatasync: %w", err)
		j.markUnsynced(j.broken)
		return j.broken
	}
	if err := j.named(f, num); err != nil {
		// Synced into a file that no name leads to: a spool removed or
		// moved away under the daemon. Nothing in it survives a stop;
		// the commits take the classic path, which fails there too.
		j.broken = err
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.s.journal.CompareAndSwap(j, nil)
		j.s.log.Error("spool: the journal's segment is no longer in the spool directory; group commit is off", "err", err)
		return j.broken
	}
	j.synced = upto
	j.batches.Add(1)
	return nil
}

// keepRoom says whether a message committed with its own files leaves the
// journal the room it needs to write out what it serves (roomFor).
func (s *Spool) keepRoom() error {
	j := s.journal.Load()
	if j == nil || j.nfs {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.roomFor(0, false)
}

// named checks that segment num's path in the spool still leads to f.
func (j *Journal) named(f *os.File, num uint64) error {
	if err := named(f, filepath.Join(j.dir, fmt.Sprintf("%020d.log", num))); err != nil {
		return fmt.Errorf("spool: journal: %w", err)
	}
	return nil
}

// named says whether the open file f is the one under path.
func named(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !os.SameFile(fi, pi) {
		return fmt.Errorf("%s is another file", path)
	}
	return nil
}

// done notes that a message is gone (delivered or removed), so that a
// replay after a power loss does not bring it back. It is not synced: if a
// power loss takes it, the message may be delivered twice, never lost.
func (j *Journal) done(id string) error {
	_, err := j.append(&record{typ: recDone, id: id})
	return err
}

// doneHeld is done for a removal that is still to happen: the note's
// segment does not retire until settled is called, after the files are
// gone.
func (j *Journal) doneHeld(id string) (settled func(), err error) {
	_, _, wg, err := j.appendRec(&record{typ: recDone, id: id}, true)
	if err != nil {
		return nil, err
	}
	return wg.Done, nil
}

// Run makes the journalled files durable once a second (checkpoint) until
// ctx ends; then it closes the journal, makes everything durable, and
// removes the journal's segments. Commits after that take the classic path.
func (j *Journal) Run(ctx context.Context) error {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	stop := context.AfterFunc(ctx, func() { close(j.quit) })
	defer stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return j.close()
		case <-t.C:
		}
		j.s.retryReplay()
		j.s.replayDead()
		j.mu.Lock()
		n := j.written
		j.mu.Unlock()
		if j.keep.Load() {
			// No more checkpoints (markUnsynced, lose); messages still
			// served get their files, for other processes to see.
			if j.s.serving() {
				j.retire(0)
			}
			continue
		}
		if n == last && len(j.old) == 0 && !j.s.serving() {
			continue
		}
		if err := j.checkpoint(); err != nil {
			if !j.lost.Load() { // else lose said why, once
				j.s.log.Error("journal checkpoint failed; will retry", "err", err)
			}
			continue
		}
		last = n
	}
}

// checkpoint starts a new segment, syncs the old one for the sessions
// waiting on it, waits for its acceptances to settle, writes out the
// messages it serves, makes the spool's files durable with syncfs, and
// then removes the old segment: everything it recorded is in the files now.
func (j *Journal) checkpoint() error {
	if j.keep.Load() {
		return errJournalKept
	}
	j.mu.Lock()
	num, empty := j.segNum, j.written == j.segStart
	j.mu.Unlock()
	if empty && len(j.old) > 0 {
		// Nothing recorded since the last checkpoint, which could not
		// retire its segment (a full disk): try that again, rather than
		// keep one more empty segment open for every retry.
		return j.retire(j.old[len(j.old)-1].num)
	}
	nf, nnum, nsize, err := j.newSegment(num)
	if err != nil {
		j.mu.Lock()
		cur := j.f
		j.mu.Unlock()
		if nerr := j.named(cur, num); nerr != nil {
			return j.lose(nerr)
		}
		return err
	}
	j.syncMu.Lock()
	j.mu.Lock()
	old, oldNum, upto, wg := j.f, j.segNum, j.written, j.inflight
	j.f, j.segNum, j.size, j.inflight, j.segStart = nf, nnum, nsize, new(sync.WaitGroup), upto
	j.oldServed = usage{j.oldServed.bytes + j.served.bytes, j.oldServed.n + j.served.n}
	j.served = usage{}
	j.mu.Unlock()
	rotated := time.Now()
	err = j.s.syncData(old)
	if err == nil {
		j.synced = upto
	} else {
		// As in waitSynced: nothing in this journal can be trusted
		// any more; the sessions waiting on it take the classic path.
		j.broken = fmt.Errorf("spool: journal fdatasync: %w", err)
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		j.s.journal.CompareAndSwap(j, nil)
	}
	j.syncMu.Unlock()
	j.old = append(j.old, oldSegment{old, oldNum})
	if err != nil {
		// The old segment keeps its records; replay will use them. The
		// marker goes down first: waiting for sessions on a failing
		// disk can take long, and a kill meanwhile must not leave a
		// journal that the next start trusts.
		j.markUnsynced(err)
		wg.Wait()
		j.s.writeOutAll(0)
		return j.broken
	}
	wg.Wait()
	if d := j.grace - time.Since(rotated); d > 0 && len(j.s.servedUpTo(oldNum)) > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-j.quit:
			t.Stop()
		}
	}
	return j.retire(oldNum)
}

// close ends the journal: later commits take the classic path, and the
// messages it serves are written out.
func (j *Journal) close() error {
	j.s.journal.CompareAndSwap(j, nil)
	j.syncMu.Lock()
	j.mu.Lock()
	j.closed = true
	f, num, wg := j.f, j.segNum, j.inflight
	j.mu.Unlock()
	err := j.s.syncData(f)
	if err == nil {
		j.mu.Lock()
		j.synced = j.written
		j.mu.Unlock()
	} else {
		// As in waitSynced: a session still waiting on a record must
		// not sync again and take that second sync's word for it.
		j.broken = fmt.Errorf("spool: journal fdatasync: %w", err)
	}
	j.syncMu.Unlock()
	j.old = append(j.old, oldSegment{f, num})
	if err != nil {
		j.markUnsynced(err)
	}
	wg.Wait()
	defer j.fsDir.Close()
	if err != nil {
		// The segments stay for replay; the files are the best copy.
		j.s.writeOutAll(0)
		return fmt.Errorf("spool: journal: %w", err)
	}
	return j.retire(0)
}

// lose ends group commit when the active segment is no longer named in
// the spool (its directory removed or moved away under the daemon): the
// records of the messages served from memory are in no file a restart
// reads, so those messages are written out and synced now, rather than
// left in memory, and the checkpoints stop (keep) as after a failed sync.
func (j *Journal) lose(cause error) error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.s.journal.CompareAndSwap(j, nil)
	j.lost.Store(true)
	if j.keep.CompareAndSwap(false, true) {
		j.s.log.Error("spool: the journal's segment is no longer in the spool directory; group commit is off, and the messages it served are written to files",
			"err", cause)
	}
	j.retire(0)
	return fmt.Errorf("spool: journal lost: %w", cause)
}

// errJournalKept is what a checkpoint returns once a sync has failed.
var errJournalKept = errors.New("spool: journal kept for the next start after a failed sync")

// unsyncedMarker, in the journal directory, tells the next start's replay
// that a sync failed while the segments were written: the kernel may have
// dropped dirty pages of the spool's files, so the replay checks every
// file against the records as after a power loss, even under this boot.
const unsyncedMarker = "unsynced"

// markUnsynced keeps the segments and stops group commit after a failed
// fdatasync or syncfs: a later sync that succeeds says nothing of the
// pages the failed one dropped (the "fsyncgate" lesson), so no segment may
// be retired on its word. Commits take the classic path, whose fsyncs
// answer for each message.
func (j *Journal) markUnsynced(cause error) {
	if j.stopGroupCommit("spool: a sync failed; group commit is off and the journal is kept until the next start, which checks every journalled message's files against it", cause) {
		j.s.markJournalUnsynced()
	}
}

// stopGroupCommit keeps the segments for the next start and sends later
// commits the classic way, saying why once; it reports whether this call
// stopped it.
func (j *Journal) stopGroupCommit(why string, cause error) bool {
	if !j.keep.CompareAndSwap(false, true) {
		return false
	}
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.s.journal.CompareAndSwap(j, nil)
	j.s.log.Error(why, "err", cause)
	return true
}

// markJournalUnsynced writes the unsynced marker durably. It is empty, so
// that it needs an inode but no data block: a failed sync often comes with
// a full disk. The cause is in the log.
func (s *Spool) markJournalUnsynced() {
	if err := safefile.WriteFile(filepath.Join(s.dir, journalDir, unsyncedMarker), nil, 0o640); err != nil {
		s.log.Error("spool: cannot mark the journal as unsynced; a start under this boot will trust the files", "err", err)
	}
}

// Fault hooks for tests: a non-nil error from one fails the sync it stands
// for, as the disk would; faultAppend, if set, writes a journal record.
var (
	faultSyncData, faultSyncFS func() error
	faultAppend                func(f *os.File, b []byte, off int64) (int, error)
	// faultCreated, if set, runs between a content file's creation and
	// its lock (createFile).
	faultCreated func(path string)
)

// syncData fdatasyncs f, unless sync is off (benchmark setup).
func (s *Spool) syncData(f *os.File) error {
	if s.noSync {
		return nil
	}
	defer s.observeSync(SyncJournal, time.Now())
	if faultSyncData != nil {
		if err := faultSyncData(); err != nil {
			return err
		}
	}
	return unix.Fdatasync(int(f.Fd()))
}

// syncFSOn makes every file of the spool's file system durable: syncfs(2),
// which reports write-back errors since Linux 5.8.
func (s *Spool) syncFSOn(d *os.File) error {
	if s.noSync {
		return nil
	}
	if faultSyncFS != nil {
		if err := faultSyncFS(); err != nil {
			return fmt.Errorf("spool: syncfs %s: %w", s.dir, err)
		}
	}
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("spool: syncfs %s: %w", s.dir, err)
	}
	return nil
}

// segments lists the journal's segment files in order.
func (s *Spool) segments() []string {
	des, err := os.ReadDir(filepath.Join(s.dir, journalDir))
	if err != nil {
		return nil
	}
	var names []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".log") {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	return names
}
