package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// replayJournal settles the journal segments of processes that have died,
// before Recover looks at the files:
//
//   - written under this boot (the process was killed; the kernel kept its
//     page cache): the files are as the process left them. A message whose
//     record was synced but whose envelope is still New is made Ready (or
//     Held): its session may or may not have heard 250, so it is kept. A
//     message with no envelope at all was served from memory and never
//     written out: its files are written from the record.
//   - written under another boot (a power loss or a kernel crash may have
//     taken files that were not yet synced): every message accepted in the
//     segment and not noted as done gets its content and envelope back from
//     the record unless the files on disk match it.
//
// Under either boot, a message noted as done has any files left removed.
//
// Then the file system is synced and the segments removed. A segment whose
// records stop at a checksum or format error (not merely at a record cut
// short) is moved to the quarantine directory and reported.
func (s *Spool) replayJournal(rep *RecoveryReport) error {
	accepted := map[string]replayEntry{}
	var order []string
	// done are the messages noted as removed: their files go, whichever
	// boot wrote the note. A power loss may have brought files back; a
	// kill may have come between the note and the unlinks (remove.go).
	done := map[string]bool{}
	// uncopied are the corrupt segments (by path) whose copy in
	// quarantine could not be written (journalTail).
	uncopied := map[string]bool{}
	// damaged are the corrupt segments' remains, for salvage.
	var damaged []salvageable
	var segs []*os.File
	var names []string
	defer func() {
		for _, f := range segs {
			f.Close()
		}
	}()
	boot := s.boot
	// A sync failed while these segments were written (markUnsynced): the
	// files cannot be trusted even under this boot.
	marker := filepath.Join(s.dir, journalDir, unsyncedMarker)
	if _, err := os.Stat(marker); err == nil {
		s.log.Warn("spool: the journal was kept after a failed sync; checking every journalled message's files against it")
		boot = ""
	}
	// Opened before the files are written, so that its syncfs reports
	// their write-back errors.
	fsDir, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("spool: journal replay: %w", err)
	}
	defer fsDir.Close()
	for _, name := range s.segments() {
		if s.dead.seen(name) {
			// Replayed already by this process, and kept (a full disk,
			// a salvage left to do): retryReplay, or the next start.
			continue
		}
		path := filepath.Join(s.dir, journalDir, name)
		f, err := os.Open(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) { // else retired by its process meanwhile
				s.dead.see(name)
				// Perhaps a dead process's, and the messages it served
				// are in it alone: never passed over quietly.
				s.log.Error("journal: a segment cannot be read; the messages in it are not replayed until it can be (then restart the relay)",
					"segment", path, "err", err)
			}
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &st) == nil && beingMade(&st) {
			f.Close() // another process's new segment, not yet locked
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // a live process's segment
			continue
		}
		if syscall.Fstat(int(f.Fd()), &st) == nil && st.Nlink == 0 {
			f.Close() // retired by its process between our open and lock
			continue
		}
		segs = append(segs, f)
		names = append(names, name)
		s.dead.see(name)
		br := bufio.NewReaderSize(f, 64<<10)
		sameBoot := false
		var off int64
		for first := true; ; first = false {
			r, err := readRecord(br, off)
			if err == io.EOF {
				break
			}
			if err != nil {
				if !s.journalTail(rep, path, off, err) {
					uncopied[path] = true
				}
				if !errors.Is(err, errCutShort) {
					damaged = append(damaged, salvageable{path, off, sameBoot})
				}
				break
			}
			off += int64(recHeadLen + payloadLen(r))
			if first {
				if r.typ != recHeader {
					if !s.journalTail(rep, path, 0, fmt.Errorf("%w: no header", errTorn)) {
						uncopied[path] = true
					}
					damaged = append(damaged, salvageable{path, 0, false})
					break
				}
				sameBoot = boot != "" && r.boot == boot
				continue
			}
			rep.Replayed++
			switch r.typ {
			case recAccepted, recServed:
				if _, ok := accepted[r.id]; !ok {
					order = append(order, r.id)
				}
				accepted[r.id] = replayEntry{r, sameBoot}
				delete(done, r.id)
			case recDone:
				delete(accepted, r.id)
				done[r.id] = true
			}
		}
	}
	if len(segs) == 0 {
		return nil
	}
	var unrestored []replayEntry
	for _, id := range order {
		if e, ok := accepted[id]; ok && !s.restore(e.rec, e.sameBoot, rep) {
			unrestored = append(unrestored, replayEntry{e.rec, e.sameBoot})
		}
	}
	// A removal noted after the damage is only used to leave a message
	// out: bytes a client wrote could be shaped as one.
	unsalvaged := s.salvage(damaged, maps.Clone(done), rep)
	for id := range done {
		s.removeDone(id)
	}
	if err := s.syncFSOn(fsDir); err != nil {
		// The error is reported once: the next replay's syncfs may
		// succeed without the pages this one lost. The marker makes it
		// check the files against the records even under this boot.
		s.markJournalUnsynced()
		return fmt.Errorf("spool: journal replay: %w", err)
	}
	if len(unrestored) > 0 {
		// The records are these messages' only copy (a message served
		// from memory, or one a power loss took): the segments stay for
		// the next replay, which may deliver the others twice, never
		// lose one. Until then the journal's checkpoints write these
		// messages (and only these: the others may have been delivered
		// and removed by then) once there is room (retryReplay).
		paths := make([]string, len(names))
		for i, name := range names {
			paths[i] = filepath.Join(s.dir, journalDir, name)
		}
		s.unreplayed.mu.Lock()
		s.unreplayed.entries = append(s.unreplayed.entries, unrestored...)
		s.unreplayed.segs = append(s.unreplayed.segs, paths...)
		if s.unreplayed.uncopied == nil {
			s.unreplayed.uncopied = map[string]bool{}
		}
		maps.Copy(s.unreplayed.uncopied, uncopied)
		if s.unreplayed.unsalvaged == nil {
			s.unreplayed.unsalvaged = map[string]bool{}
		}
		maps.Copy(s.unreplayed.unsalvaged, unsalvaged)
		s.unreplayed.mu.Unlock()
		return fmt.Errorf("spool: journal replay: %d messages could not be written from the journal; it is kept, and they are written once there is room", len(unrestored))
	}
	for _, name := range names {
		path := filepath.Join(s.dir, journalDir, name)
		if _, err := os.Stat(path); err == nil && !unsalvaged[path] {
			s.retireSegment(path, uncopied[path])
		}
	}
	if len(s.segments()) == 0 {
		os.Remove(marker)
	}
	return nil
}

// byteContent is a record's content, for writeFiles.
type byteContent []byte

func (b byteContent) writeTo(w io.Writer) error {
	_, err := w.Write(b)
	return err
}

// replayEntry is a message's last acceptance record in the journals
// replayed, and whether it was written under this boot.
type replayEntry struct {
	rec      *record
	sameBoot bool
}

// unreplayed are messages of dead journals that replay could not write
// out, and the segments kept for them.
type unreplayed struct {
	mu      sync.Mutex
	entries []replayEntry // guarded by mu
	segs    []string      // guarded by mu
	// uncopied are the corrupt ones among segs whose copy in
	// quarantine could not be written; guarded by mu.
	uncopied map[string]bool
	// unsalvaged are those of segs whose messages after a damaged
	// record could not all be set aside: they stay for the next start
	// (salvage); guarded by mu.
	unsalvaged map[string]bool
}

// retryReplay writes out the messages that the replay at start could not
// (a full disk), now that there may be room, and then removes the
// segments kept for them. A running daemon would otherwise leave them,
// acknowledged, in a journal that only the next start reads. The other
// messages of those segments were written at start and may have been
// delivered and removed since: they are not restored again.
func (s *Spool) retryReplay() {
	u := &s.unreplayed
	if !u.mu.TryLock() {
		return
	}
	defer u.mu.Unlock()
	if len(u.entries) == 0 {
		return
	}
	// The segments, locked, so that no other process replays them
	// meanwhile; if another process has (and removed them), it wrote
	// these messages.
	var segs []*os.File
	defer func() {
		for _, f := range segs {
			f.Close()
		}
	}()
	for _, p := range u.segs {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return
		}
		segs = append(segs, f)
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return // another process is replaying them now
		}
	}
	if len(segs) == 0 {
		u.entries, u.segs = nil, nil
		return
	}
	fsDir, err := os.Open(s.dir)
	if err != nil {
		return
	}
	defer fsDir.Close()
	var rep RecoveryReport
	left := u.entries[:0]
	for _, e := range u.entries {
		if !s.restore(e.rec, e.sameBoot, &rep) {
			left = append(left, e)
		}
	}
	done := len(u.entries) - len(left)
	u.entries = left
	if done == 0 {
		return
	}
	if err := s.syncFSOn(fsDir); err != nil {
		s.markJournalUnsynced()
		s.log.Error("journal: syncing the messages written from a kept journal failed", "err", err)
		return
	}
	s.log.Info("journal: messages a full disk had kept in the journal of a process that died are written out",
		"restored", done, "left", len(left))
	s.announce(rep.Restored)
	if len(left) > 0 {
		return
	}
	for _, p := range u.segs {
		if !u.unsalvaged[p] {
			s.retireSegment(p, u.uncopied[p]) // still locked, as in replayJournal
		}
	}
	u.segs, u.uncopied, u.unsalvaged = nil, nil, nil
	// The marker of a failed sync was about the dead journals; it goes
	// with the last of them (the segments left are live ones, locked).
	for _, name := range s.segments() {
		f, err := os.Open(filepath.Join(s.dir, journalDir, name))
		if err != nil {
			continue
		}
		dead := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
		f.Close()
		if dead {
			return
		}
	}
	os.Remove(filepath.Join(s.dir, journalDir, unsyncedMarker))
}

// payloadLen is the encoded payload length of a decoded record.
func payloadLen(r *record) int {
	switch r.typ {
	case recHeader:
		return len(r.boot)
	case recDone:
		return len(r.id)
	}
	return 6 + len(r.id) + len(r.envelope) + len(r.content)
}

// retireSegment removes a replayed segment, or, if it is corrupt and its
// copy in quarantine could not be written (a full disk: journalTail),
// moves it there, which takes no room; failing that it stays, and the
// next start reads it again.
func (s *Spool) retireSegment(path string, uncopied bool) {
	if !uncopied {
		os.Remove(path)
		return
	}
	if _, err := s.moveToQuarantine(path, journalQuarantine(s.dir, path)); err != nil {
		s.log.Error("journal: a corrupt segment could not be moved to quarantine; it stays in the journal, and the next start reads it again",
			"segment", path, "err", err)
	}
}

// journalQuarantine is where a corrupt segment is kept in quarantine.
func journalQuarantine(dir, path string) string {
	return filepath.Join(dir, quarantineDir, "journal-"+filepath.Base(path))
}

// journalTail reports where a segment stops being readable. A record cut
// short is the normal end of a journal whose writer died mid-write (never
// synced, never acknowledged); anything else is corruption, and the segment
// is kept in quarantine for inspection. It returns false if the segment is
// corrupt and its copy there could not be written: the records after the
// damage are in it alone, so it must not be removed.
func (s *Spool) journalTail(rep *RecoveryReport, path string, off int64, err error) bool {
	fi, _ := os.Stat(path)
	size := int64(0)
	if fi != nil {
		size = fi.Size()
	}
	if errors.Is(err, errCutShort) {
		rep.TornTails++
		if q := s.keepTornTail(path, off); q != "" {
			s.log.Warn("journal: dropped a record cut short at its end (never acknowledged); a copy is kept in quarantine",
				"segment", path, "offset", off, "size", size, "copy", q)
			return true
		}
		s.log.Info("journal: dropped a record cut short at its end (never acknowledged)",
			"segment", path, "offset", off, "size", size)
		return true
	}
	q := journalQuarantine(s.dir, path)
	rep.CorruptJournals = append(rep.CorruptJournals, fmt.Sprintf("%s at byte %d: %v", filepath.Base(path), off, err))
	data, cerr := os.ReadFile(path)
	if cerr == nil {
		q, cerr = s.keepInQuarantine(q, data)
	}
	if cerr != nil {
		s.log.Error("journal: unreadable record; the records before it were replayed; the segment could not be copied to quarantine and is moved there after the replay",
			"segment", path, "offset", off, "size", size, "err", err, "copy_err", cerr, "copy", q)
		return false
	}
	s.log.Warn("journal: unreadable record; the records before it were replayed, the segment is kept in quarantine",
		"segment", path, "offset", off, "size", size, "err", err, "copy", q)
	return true
}

// keepTornTail copies a torn tail, the octets of segment path from off to
// its last non-zero octet, to quarantine when there is more of it than a
// record head, and returns the copy's path ("" for none). A tail is torn
// when a crash cut the write of a record never synced, never
// acknowledged; but a disk that returns zeros for an acknowledged
// record's last sectors makes a whole record read the same, and the copy
// is then all that is left of that message (docs/spool.md). A tail
// within a head holds no message. The copy is best effort: replay goes
// on without it (a full disk).
func (s *Spool) keepTornTail(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, off, 1<<62))
	if err != nil {
		return ""
	}
	data = bytes.TrimRight(data, "\x00")
	if len(data) <= recHeadLen {
		return ""
	}
	q, err := s.keepInQuarantine(fmt.Sprintf("%s.torn-%d", journalQuarantine(s.dir, path), off), data)
	if err != nil {
		s.log.Warn("journal: a torn tail could not be copied to quarantine", "segment", path, "offset", off, "err", err)
		return ""
	}
	return q
}

// restore settles one journalled message, as replayJournal describes. It
// returns false if the message's files could not be written.
func (s *Spool) restore(r *record, sameBoot bool, rep *RecoveryReport) bool {
	lock, err := s.lockContent(r.id)
	if errors.Is(err, ErrBusy) {
		return true // a live worker has it
	}
	if lock != nil {
		defer lock.Close()
	}
	st, ferr := s.find(r.id)
	// An empty content is never a message's (recovery quarantines it as
	// torn): under this boot it means the page cache lost the file's data
	// after all (its file system failed and was mounted again, on a kernel
	// whose mount ids cacheEpoch cannot tell apart), and the record has it.
	if fi, err := os.Lstat(s.contentPath(r.id)); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 && len(r.content) > 0 {
		sameBoot = false
	}
	if sameBoot && (r.typ != recServed || ferr == nil && st == New) {
		// A message accepted with its files has them as the process
		// left them; missing ones were removed by another process (a
		// queue command, a forwarder) and stay removed.
		if ferr == nil && st == New {
			if err := rename(s.envelopePath(r.id, New), s.envelopePath(r.id, r.state)); err == nil {
				rep.Restored = append(rep.Restored, r.id)
			}
		}
		return true
	}
	// Under this boot the files are as the process left them, and are
	// kept if whole. A message served from memory (hot.go) and never
	// written out has none, and one whose writing out was cut short may
	// lack its envelope: the record is all there is, as after a power
	// loss. Content that exists is whole (it is linked into place only
	// once written) and may have been changed since by a client filter,
	// so it is kept.
	envOK := ferr == nil && st != New
	if envOK {
		if _, err := s.readEnvelope(r.id, st); err != nil {
			envOK = false
		}
	}
	if lock == nil && errors.Is(err, ErrNotFound) && !envOK {
		// No content: the message's files are written as a served
		// message's are, the content linked into place locked, so that
		// no recovery (of this process, running by now when the replay
		// is retried, or of another) finds it without its envelope.
		for _, old := range []State{New, Ready, Claimed, Failed, Held} {
			os.Remove(s.envelopePath(r.id, old))
		}
		f, err := s.writeFiles(r.id, r.state, r.envelope, byteContent(r.content))
		if err != nil {
			s.log.Error("journal: restoring the message failed", "id", r.id, "err", err)
			return false
		}
		f.Close()
		rep.Restored = append(rep.Restored, r.id)
		return true
	}
	changed := false
	got, cerr := os.ReadFile(s.contentPath(r.id))
	if cerr != nil || (!sameBoot && string(got) != string(r.content)) {
		if err := s.writeAtomic(s.contentPath(r.id), r.content); err != nil {
			s.log.Error("journal: restoring content failed", "id", r.id, "err", err)
			return false
		}
		changed = true
	}
	if !envOK {
		for _, old := range []State{New, Ready, Claimed, Failed, Held} {
			os.Remove(s.envelopePath(r.id, old))
		}
		if err := s.writeAtomic(s.envelopePath(r.id, r.state), r.envelope); err != nil {
			s.log.Error("journal: restoring envelope failed", "id", r.id, "err", err)
			return false
		}
		changed = true
	}
	if changed {
		rep.Restored = append(rep.Restored, r.id)
	}
	return true
}

// removeDone removes what came back of a message the journal says is gone.
func (s *Spool) removeDone(id string) {
	lock, err := s.lockContent(id)
	if errors.Is(err, ErrBusy) {
		return
	}
	if lock != nil {
		defer lock.Close()
	}
	for _, st := range []State{New, Ready, Claimed, Failed, Held} {
		os.Remove(s.envelopePath(id, st))
	}
	os.Remove(s.contentPath(id))
}

// announce tells the scheduler of the messages a replay restored ready.
func (s *Spool) announce(ids []string) {
	for _, id := range ids {
		if env, st, err := s.Read(id); err == nil && st == Ready {
			s.committed(id, env.Marshal())
		}
	}
}

// deadJournals are the journal segments this process has replayed (or
// found unreadable), and what it does when another process sharing the
// spool dies while this one runs.
type deadJournals struct {
	mu       sync.Mutex
	replayed map[string]bool // segment names; guarded by mu
	running  atomic.Bool     // a replay of them is under way
	// recovered hears what each such replay did (OnRecovered).
	recovered func(RecoveryReport, error)
}

func (d *deadJournals) seen(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.replayed[name]
}

func (d *deadJournals) see(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.replayed == nil {
		d.replayed = map[string]bool{}
	}
	d.replayed[name] = true
}

// OnRecovered makes f hear what each replay of a journal of a process
// that died while this one runs did (replayDead), as the caller of
// Recover does at start. Call it before the Spool is shared.
func (s *Spool) OnRecovered(f func(RecoveryReport, error)) { s.dead.recovered = f }

// replayDead replays the journal of another process sharing the spool
// that has died while this one runs, then settles the files it left
// (Recover), in the background. Its messages served from memory were
// acknowledged, and those it was delivering are left claimed: they would
// otherwise wait, undelivered and unlisted, for the next start of a relay
// on the spool. Called once a second.
func (s *Spool) replayDead() {
	if !s.deadSegment() || !s.dead.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.dead.running.Store(false)
		s.log.Warn("journal: a process sharing the spool has died; replaying its journal")
		rep, err := s.Recover()
		s.announce(rep.Restored)
		if f := s.dead.recovered; f != nil {
			f(rep, err)
		}
	}()
}

// deadSegment says whether the journal directory holds a segment that
// no live process locks and that this process has not replayed.
func (s *Spool) deadSegment() bool {
	for _, name := range s.segments() {
		if s.dead.seen(name) {
			continue
		}
		f, err := os.Open(filepath.Join(s.dir, journalDir, name))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return true // for the replay to report
		}
		var st syscall.Stat_t
		dead := syscall.Fstat(int(f.Fd()), &st) == nil && !beingMade(&st) &&
			syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil &&
			syscall.Fstat(int(f.Fd()), &st) == nil && st.Nlink > 0
		f.Close()
		if dead {
			return true
		}
	}
	return false
}

// segmentMakeAge is how long a segment found empty is taken for one being
// made by another process, between its creation and its lock (newSegment),
// rather than the segment of one that died there.
const segmentMakeAge = time.Minute

// beingMade says whether a segment, by its stat, may be another process's
// in the instant between its creation and its lock: neither the look for a
// dead relay's journal nor the replay may lock it then (the maker's lock
// would fail) or retire it (the maker would lock a file no longer named in
// the spool, and write its records there).
func beingMade(st *syscall.Stat_t) bool {
	return st.Size == 0 && time.Since(time.Unix(st.Mtim.Unix())) < segmentMakeAge
}
