package spool

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Writer receives one new message. Write the content, then call Prepare (the
// message is on disk in state New, where filters may see and edit it) and
// Commit (the message is accepted), or Abort at any point.
type Writer struct {
	s        *Spool
	id       string
	f        *os.File // the content file, locked until Commit or Abort
	bw       *bufio.Writer
	n        int64
	prepared bool
	// journaled: Prepare skipped the fsyncs; Commit journals the
	// message, or fsyncs its files if the journal is gone.
	journaled bool
	// env is the envelope Prepare wrote; exposed says its path or the
	// content's was handed out (to a filter, which may have edited
	// them), so Commit must read the files again rather than trust env
	// and n.
	env     []byte
	exposed bool
	fileErr error // writing the files of a message held in memory failed
	done    bool
	// mem holds the content while the message may still be served from
	// the journal (hot.go); spill moves it to the content file.
	mem *chunks
	// started is when Create made the id (on the real clock).
	started time.Time
}

// writeBufs keeps the content buffers of finished Writers: 64 KiB each,
// which would otherwise be a new allocation (and as much garbage) per
// message.
var writeBufs sync.Pool

// Create starts a new message. With the journal open and a scheduler in
// this process watching (there is no point otherwise: nobody here would
// claim it), it starts in memory, to be served from the journal if it
// stays small.
func (s *Spool) Create(now time.Time) (*Writer, error) {
	if s.journal.Load() != nil && s.watcher.Load() != nil && !s.noHot {
		for range 5 {
			if id := s.newID(now); s.reserve(id) {
				s.startReceipt(id)
				return &Writer{s: s, id: id, mem: &chunks{t: &s.hot}, started: time.Now()}, nil
			}
		}
		return nil, fmt.Errorf("spool: create: no free id")
	}
	for range 5 {
		w := &Writer{s: s, id: s.newID(now)}
		err := w.createFile()
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.startReceipt(w.id)
		return w, nil
	}
	return nil, fmt.Errorf("spool: create: no free id")
}

// createFile creates and locks the content file, with a write buffer.
//
// A recovery of the spool's files (at start, or replayDead's while relays
// share the spool) may find the file in the instant between its creation
// and its lock, unlocked and without an envelope, and remove it or move it
// to quarantine: the file locked is then checked to be still the one
// under the message's name, and made again if not, so that the message is
// never written into a file the spool no longer names.
func (w *Writer) createFile() error {
	path := w.s.contentPath(w.id)
	for range 3 {
		f, err := openFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if os.IsExist(err) {
			return err
		}
		if err != nil {
			return fmt.Errorf("spool: create: %w", err)
		}
		w.s.chown(f)
		if faultCreated != nil {
			faultCreated(path)
		}
		if err := lockNew(f); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("spool: lock new message: %w", err)
		}
		if named(f, path) != nil {
			f.Close() // taken away by a recovery before the lock
			continue
		}
		w.f = f
		break
	}
	if w.f == nil {
		return fmt.Errorf("spool: create: %s removed under the relay as it was made", path)
	}
	f := w.f
	bw, _ := writeBufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(f, 64<<10)
	}
	bw.Reset(f)
	w.bw = bw
	return nil
}

// lockNew locks a content file just made. Another process's recovery may
// hold it for a moment, having found it unlocked and without an envelope
// (see createFile): the writer waits for that, up to 2 s, rather than fail
// the message (`submit` beside a running relay exited 1); createFile then
// checks the file is still under the message's name.
func lockNew(f *os.File) error {
	for i := 0; ; i++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EWOULDBLOCK || i == 200 {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// spill moves content held in memory to the content file, which from now
// on holds the message's id.
func (w *Writer) spill() error {
	if err := w.createFile(); err != nil {
		w.fileErr = err
		return err
	}
	w.s.unreserve(w.id)
	err := w.mem.writeTo(w.bw)
	// The content file holds the message from now on, whole or not:
	// after a failure (a full disk) Abort removes it.
	w.mem.release()
	w.mem = nil
	if err != nil {
		w.fileErr = fmt.Errorf("spool: write content: %w", err)
		return w.fileErr
	}
	return nil
}

// toScratch moves the content to a scratch file (hot.go), waiting up to
// inFlowDelay for one while all are taken: those are the messages received
// or accepted but not yet delivered, and a message past them gets its own
// files, which then cost more work than the wait (Postfix's in_flow_delay:
// intake slows to the pace of delivery, for a second at most).
//
// The wait ends too when the message would be too old to be served
// (servedIntake): it would take its files at Commit anyway.
func (w *Writer) toScratch() bool {
	deadline := w.started.Add(servedIntake)
	if d := time.Now().Add(inFlowDelay); d.Before(deadline) {
		deadline = d
	}
	for {
		err := w.mem.toScratch(w.s.dir)
		if !errors.Is(err, errNoScratch) {
			return err == nil
		}
		if !w.s.hot.waitRoom(deadline) {
			return w.mem.toScratch(w.s.dir) == nil // a last look
		}
	}
}

// ID is the new message's id.
func (w *Writer) ID() string { return w.id }

// Write appends to the content.
func (w *Writer) Write(p []byte) (int, error) {
	if w.mem != nil && !w.prepared && time.Since(w.started) > servedIntake {
		// Too slow to be served (Commit would write its files): to
		// its files now, letting go of its memory or scratch slot.
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	if w.mem != nil && !w.prepared {
		if w.mem.n+len(p) <= hotMaxContent && w.mem.fits(len(p)) {
			w.mem.Write(p)
			w.n += int64(len(p))
			return len(p), nil
		}
		if w.mem.n+len(p) <= journalMaxContent && (w.mem.f != nil || w.toScratch()) {
			// Past the memory: a scratch file, then served from the
			// journal segment all the same (hot.go).
			n, err := w.mem.Write(p)
			w.n += int64(n)
			return n, err
		}
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	if w.bw == nil {
		return 0, fmt.Errorf("spool: write after prepare")
	}
	n, err := w.bw.Write(p)
	w.n += int64(n)
	return n, err
}

// Size is the number of content bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// MaxAcceptedEnvelope bounds a new message's envelope. No client's
// recipients come near it (1,000 of them, each with the longest address and
// ORCPT, make about 1 MiB), but virtual_alias_maps can make a million of a
// thousand; the bound leaves room for the status lines delivery adds to
// each recipient before maxEnvelope, past which an envelope cannot be
// read back.
const MaxAcceptedEnvelope = 2 << 20

// ErrEnvelopeTooLarge is Prepare's refusal of an envelope past
// MaxAcceptedEnvelope.
var ErrEnvelopeTooLarge = errors.New("spool: the envelope is too large (too many recipients)")

// Prepare writes the envelope in state New, where filters may see and edit
// the files. The message is not accepted yet: a crash now quarantines it on
// restart. Without a journal the content and envelope are fsynced here;
// with one (and a message small enough for it), Commit journals both.
func (w *Writer) Prepare(env *Envelope) error {
	if w.prepared || (w.mem == nil && w.bw == nil) {
		return fmt.Errorf("spool: prepare twice")
	}
	env.ID = w.id
	marshaled := env.Marshal()
	if len(marshaled) > MaxAcceptedEnvelope {
		return fmt.Errorf("%w (%d octets)", ErrEnvelopeTooLarge, len(marshaled))
	}
	if w.mem != nil {
		// Still in memory: Commit serves it from the journal, or
		// writes its files (toFiles) if a filter or the budget wants.
		w.env = marshaled
		w.journaled, w.prepared = true, true
		return nil
	}
	err := w.bw.Flush()
	w.releaseBuf()
	if err != nil {
		return fmt.Errorf("spool: write content: %w", err)
	}
	w.journaled = w.s.journal.Load() != nil && w.n <= journalMaxContent
	if w.journaled {
		// A new name, so no temporary file is needed: a torn .new file
		// is quarantined like any other unfinished receipt.
		w.env = marshaled
		if err := w.s.writeFile(w.s.envelopePath(w.id, New), w.env, 0o640); err != nil {
			return fmt.Errorf("spool: write envelope: %w", err)
		}
		w.prepared = true
		return nil
	}
	if err := w.s.syncFile(w.f); err != nil {
		return fmt.Errorf("spool: fsync content: %w", err)
	}
	if err := w.s.writeAtomic(w.s.envelopePath(w.id, New), marshaled); err != nil {
		return fmt.Errorf("spool: write envelope: %w", err)
	}
	w.prepared = true
	return nil
}

// Finish prepares and commits, ready, a message that no filter sees (a
// notice, a local submission, an encapsulated copy), and aborts it if
// either step fails.
func (w *Writer) Finish(env *Envelope) error {
	err := w.Prepare(env)
	if err == nil {
		err = w.Commit(false)
	}
	if err != nil {
		w.Abort()
	}
	return err
}

// ContentPath and EnvelopePath name the files of a prepared message, for
// filters that run between Prepare and Commit.
func (w *Writer) ContentPath() string {
	w.toFiles()
	w.exposed = true
	return w.s.contentPath(w.id)
}

func (w *Writer) EnvelopePath() string {
	w.toFiles()
	w.exposed = true
	return w.s.envelopePath(w.id, New)
}

// toFiles writes a message held in memory to its files: the content, and,
// once prepared, the envelope in state New. An error is kept for Commit.
func (w *Writer) toFiles() error {
	if w.mem == nil {
		return w.fileErr
	}
	err := w.spill()
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil && w.prepared {
		w.releaseBuf()
		if err = w.s.writeFile(w.s.envelopePath(w.id, New), w.env, 0o640); err != nil {
			err = fmt.Errorf("spool: write envelope: %w", err)
		}
	}
	if err != nil && w.fileErr == nil {
		w.fileErr = err
	}
	return w.fileErr
}

// Commit accepts the message: the envelope is renamed to state Ready (or
// Held, if hold is true), and made durable. Only after Commit has returned
// nil may the client be told 250.
//
// With a journal, the content and envelope (as filters left them) go into
// one journal record, and Commit waits for the batch of records that holds
// it to be fdatasynced before it renames the envelope; without one, the
// rename is followed by a directory fsync.
func (w *Writer) Commit(hold bool) error {
	// Committed or not, the receipt is over: a failed Commit's files are
	// the caller's to Abort, or recovery's at the next start.
	defer w.s.endReceipt(w.id)
	if !w.prepared {
		return fmt.Errorf("spool: commit before prepare")
	}
	if w.fileErr != nil {
		// Its files could not be written (a full disk), and a filter
		// may have seen them part-written: refused, never served as
		// though nothing had happened.
		return w.fileErr
	}
	to := Ready
	if hold {
		to = Held
	}
	if w.mem != nil && (hold || time.Since(w.started) > servedIntake) {
		// Held: kept until an administrator acts, as files. A message
		// that took long to arrive has an id too old for the window in
		// which other processes wait for a served message's files
		// (ServedWindow, counted from the id's time): files too.
		if err := w.toFiles(); err != nil {
			return err
		}
	}
	synced := false // the files fsynced since a filter last saw them
	if w.mem != nil {
		err := w.commitServed(to)
		if err == nil {
			w.done = true
			if to == Ready {
				w.s.committed(w.id, w.env)
			}
			return nil
		}
		if !errors.Is(err, errJournalClosed) {
			w.s.log.Warn("journal commit failed; syncing the message's own files", "id", w.id, "err", err)
			w.journaled = false
		}
		if err := w.toFiles(); err != nil {
			return err
		}
		if !w.journaled {
			if err := w.syncFiles(); err != nil {
				return err
			}
			synced = true
		}
	}
	if w.journaled {
		env, err := w.commitJournal(to)
		if err == nil {
			w.done = true
			err = w.f.Close() // releases the lock
			if to == Ready {
				w.s.committed(w.id, env)
			}
			return err
		}
		if !errors.Is(err, errJournalClosed) {
			w.s.log.Warn("journal commit failed; syncing the message's own files", "id", w.id, "err", err)
		}
		if err := w.syncFiles(); err != nil {
			return err
		}
		synced = true
	}
	if w.exposed && !synced {
		// Prepare synced the files before the filter ran; what it
		// wrote since (a content rewritten in place, or a new file
		// renamed over it, a line added to the envelope) is in the
		// page cache alone, and the directory's fsync below does not
		// write it. The client hears 250 for the message as the
		// filter left it.
		if err := w.syncFiles(); err != nil {
			return err
		}
	}
	if err := w.s.keepRoom(); err != nil {
		return err
	}
	if err := rename(w.s.envelopePath(w.id, New), w.s.envelopePath(w.id, to)); err != nil {
		return fmt.Errorf("spool: commit: %w", err)
	}
	// From here the message is Ready (or Held) for everyone who looks,
	// and Abort must not remove it.
	w.done = true
	if err := w.s.syncDir(); err != nil {
		// The rename may or may not survive a crash. Keep the message:
		// a duplicate is acceptable, a loss is not. The client hears a
		// temporary error and may send it again.
		w.f.Close()
		return fmt.Errorf("spool: commit: %w", err)
	}
	err := w.f.Close() // releases the lock
	if to == Ready {
		w.s.committed(w.id, nil)
	}
	return err
}

// commitServed journals a message held in memory, waits for the record to
// be synced, and serves the message from memory from then on (hot.go).
func (w *Writer) commitServed(to State) error {
	j := w.s.journal.Load()
	if j == nil {
		return errJournalClosed
	}
	r := &record{typ: recServed, id: w.id, state: to, envelope: w.env}
	if w.mem.f != nil {
		if err := w.mem.flush(); err != nil {
			return err
		}
		r.contentAt, r.contentLen = w.mem.f, w.mem.n
	} else {
		r.parts = w.mem.parts()
	}
	a, err := j.appendAccepted(r)
	if err != nil {
		return err
	}
	defer a.settled()
	if err := j.waitSynced(a.seq); err != nil {
		return err
	}
	if w.mem.f != nil {
		// The record ends with the content.
		w.mem.toSegment(a.f, a.end-int64(w.mem.n))
	}
	e := &hotMsg{id: w.id, seg: a.seg, state: to, env: w.env, content: *w.mem}
	w.mem = nil
	w.s.accepted(e)
	return nil
}

// commitJournal appends the message to the journal, waits for it to be
// synced, and renames the envelope into state to. The rename comes last:
// after a power loss, a message whose envelope left state New is always in
// a synced record, which replay checks the files against. It returns the
// envelope as journaled.
func (w *Writer) commitJournal(to State) ([]byte, error) {
	j := w.s.journal.Load()
	if j == nil {
		return nil, errJournalClosed
	}
	env, size := w.env, w.n
	if w.exposed {
		// A filter may have edited the files: journal them as they are.
		var err error
		if env, err = readFile(w.s.envelopePath(w.id, New)); err != nil {
			return nil, fmt.Errorf("spool: commit: %w", err)
		}
		fi, err := w.f.Stat()
		if err != nil {
			return nil, fmt.Errorf("spool: commit: %w", err)
		}
		if size = fi.Size(); size > journalMaxContent {
			return nil, errJournalClosed // a filter made it large: the classic path
		}
	}
	a, err := j.appendAccepted(&record{typ: recAccepted, id: w.id, state: to, envelope: env,
		contentAt: w.f, contentLen: int(size)})
	if err != nil {
		return nil, err
	}
	// Settled after the rename: the checkpoint that removes this
	// segment waits for it, so that its syncfs covers the rename.
	defer a.settled()
	if err := j.waitSynced(a.seq); err != nil {
		return nil, err
	}
	if err := rename(w.s.envelopePath(w.id, New), w.s.envelopePath(w.id, to)); err != nil {
		// Durable in the journal, but not renamed: a replay would
		// deliver it, so the client hearing 452 may mean a duplicate.
		return nil, fmt.Errorf("spool: commit: %w", err)
	}
	return env, nil
}

// syncFiles fsyncs the content and the new envelope, for the classic path.
func (w *Writer) syncFiles() error {
	if err := w.s.syncFile(w.f); err != nil {
		return fmt.Errorf("spool: fsync content: %w", err)
	}
	if err := w.s.syncPathFile(w.s.envelopePath(w.id, New)); err != nil {
		return fmt.Errorf("spool: fsync envelope: %w", err)
	}
	return nil
}

// syncPathFile fsyncs the file at path.
func (s *Spool) syncPathFile(path string) error {
	f, err := openFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return s.syncFile(f)
}

// Abort throws the message away. It is for messages the client was not told
// were accepted: a rejected or broken transaction, a proxied message.
func (w *Writer) Abort() {
	defer w.s.endReceipt(w.id)
	if w.done {
		return
	}
	w.done = true
	if w.mem != nil {
		w.mem.release()
		w.mem = nil
		w.s.unreserve(w.id)
		return
	}
	w.releaseBuf()
	os.Remove(w.s.envelopePath(w.id, New))
	os.Remove(w.s.contentPath(w.id))
	w.f.Close()
}

// releaseBuf gives the content buffer back for the next Writer.
func (w *Writer) releaseBuf() {
	if w.bw != nil {
		w.bw.Reset(nil)
		writeBufs.Put(w.bw)
		w.bw = nil
	}
}

// Relock takes the lock again on the content file as it is now. A filter
// that rewrites the content by renaming a new file over it (E-MailRelay's
// addsig does "mv $1.tmp $1") leaves the old lock on an inode nobody uses.
func (w *Writer) Relock() error {
	if w.fileErr != nil {
		return w.fileErr // the filter saw files that are not the message
	}
	if w.f == nil {
		return w.toFiles() // no filter has seen it: nothing moved
	}
	nf, err := relock(w.s.contentPath(w.id), w.f)
	if errors.Is(err, os.ErrNotExist) && w.s.inQuarantine(w.id) {
		// Not the filter's doing (abandon): another process's recovery
		// took the files while the filter had unlocked them. The client
		// must not hear 250 for a message in quarantine.
		return fmt.Errorf("spool: %s was set aside in %s while a filter ran; refused", w.id, quarantineDir)
	}
	if err != nil {
		return err
	}
	w.f = nf
	return nil
}

// inQuarantine reports whether recovery moved id's content into quarantine.
func (s *Spool) inQuarantine(id string) bool {
	_, err := os.Lstat(s.dir + "/" + quarantineDir + "/" + id + ".content")
	return err == nil
}
