package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Messages served from the journal. While the journal is open, a small
// message is accepted without files: its content stays in memory (in
// pooled chunks), its journal record is what makes it durable, and the
// scheduler in this process claims, reads and deletes it there. Most
// messages are forwarded within milliseconds, so they never cost a file
// created, written, renamed, read back and removed. A message still here
// when its journal segment is checkpointed (at most a second or two) is
// written out as E-MailRelay's files, under its lock, before the segment
// goes; from then on it is an ordinary spool message. A filter or any
// other reader that needs a path gets the files written at once.
//
// Other processes see a message only once it has files; in this process
// List, Read, Claim and Lock see both kinds.
const (
	// hotMaxContent is the largest message kept in memory while it is
	// received; a larger one goes to its content file as it arrives.
	hotMaxContent = 128 << 10
	// hotBudget bounds the memory that messages held in memory take,
	// received or served (counted in chunks); past it, a message being
	// received goes to its file. 4 MiB keeps 100 sessions of 100 KiB
	// messages within the relay's 40 MiB.
	hotBudget = 4 << 20
	// hotChunk is the size of one content chunk: a 4 KiB message and
	// its headers fit in one.
	hotChunk = 8 << 10
	// hotMaxFiles bounds the messages received into scratch files or
	// served from their journal records (each holds a descriptor); past
	// it, a message goes to its content file.
	hotMaxFiles = 128
)

// ServedWindow bounds how long after its id's time a message may be
// served from the memory of the daemon that accepted it, unseen by other
// processes: accepted within servedIntake of its id (which counts whole
// seconds), it is written out by the checkpoint after the next one's
// writeOutGrace. Commands in another process that do not find a message
// that young wait this long for it.
const ServedWindow = 4 * time.Second

// servedIntake is how long after its id was made a message may still be
// accepted to be served from memory: with the checkpoint's second after
// it, its files appear well within ServedWindow of its id's time.
const servedIntake = time.Second

// IDTime is when a message was created, from its id: the spool's ids start
// with eight hex digits of the time in seconds. ok is false for an id of
// another form (E-MailRelay's).
func IDTime(id string) (t time.Time, ok bool) {
	if len(id) < 8 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseUint(id[:8], 16, 32)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(sec), 0), true
}

var hotChunks = sync.Pool{New: func() any { return new([hotChunk]byte) }}

// chunks is message content in pooled fixed-size pieces, counted in the
// Spool's budget; or, in file mode, in a file: a message that does not fit
// the budget is received into a private scratch file (toScratch), and once
// its record is synced it is read from the journal segment (toSegment).
type chunks struct {
	bufs []*[hotChunk]byte
	n    int
	t    *hotTable // the budget, the count of file-mode chunks, scratch files
	// f, in file mode, holds the content from off: a scratch file
	// (isScratch), or the journal segment; tail buffers the last bytes
	// written to the scratch file, until flush.
	f         *os.File
	off       int64
	isScratch bool
	tail      *[hotChunk]byte
	tailN     int
}

// fits says whether k more bytes fit in memory, within the budget.
func (c *chunks) fits(k int) bool {
	if c.f != nil {
		return false
	}
	need := int64((c.n+k+hotChunk-1)/hotChunk-len(c.bufs)) * hotChunk
	return need <= 0 || c.t.mem.Load()+need <= hotBudget
}

func (c *chunks) Write(p []byte) (int, error) {
	if c.f != nil {
		return c.writeFile(p)
	}
	total := len(p)
	for len(p) > 0 {
		off := c.n % hotChunk
		if off == 0 && c.n/hotChunk == len(c.bufs) {
			c.bufs = append(c.bufs, hotChunks.Get().(*[hotChunk]byte))
			c.t.mem.Add(hotChunk)
		}
		k := copy(c.bufs[c.n/hotChunk][off:], p)
		c.n += k
		p = p[k:]
	}
	return total, nil
}

// writeFile appends to the scratch file: whole chunks of p at once, the
// rest through the tail.
func (c *chunks) writeFile(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if c.tailN == 0 && len(p) >= hotChunk {
			k := len(p) - len(p)%hotChunk
			if _, err := c.f.WriteAt(p[:k], int64(c.n)); err != nil {
				return total - len(p), fmt.Errorf("spool: write content: %w", err)
			}
			c.n += k
			p = p[k:]
			continue
		}
		k := copy(c.tail[c.tailN:], p)
		c.tailN += k
		c.n += k
		p = p[k:]
		if c.tailN == hotChunk {
			if err := c.flush(); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, nil
}

// flush writes the tail to the scratch file. After a failure the tail
// stays in memory, so that writeTo still has every byte.
func (c *chunks) flush() error {
	if c.f == nil || c.tailN == 0 {
		return nil
	}
	if _, err := c.f.WriteAt(c.tail[:c.tailN], int64(c.n-c.tailN)); err != nil {
		return fmt.Errorf("spool: write content: %w", err)
	}
	c.tailN = 0
	return nil
}

// toScratch moves the content to a private scratch file (scratch.go).
func (c *chunks) toScratch(dir string) error {
	if c.t.files.Add(1) > hotMaxFiles {
		c.t.files.Add(-1)
		return errNoScratch
	}
	f, err := c.t.scratch.get(dir)
	if err != nil {
		c.t.files.Add(-1)
		return err
	}
	var off int64
	for _, p := range c.parts() {
		if _, err := f.WriteAt(p, off); err != nil {
			c.t.scratch.put(f)
			c.t.files.Add(-1)
			c.t.roomMade()
			return fmt.Errorf("spool: write content: %w", err)
		}
		off += int64(len(p))
	}
	n := c.n
	c.release()
	c.f, c.n, c.tail, c.isScratch = f, n, hotChunks.Get().(*[hotChunk]byte), true
	return nil
}

// toSegment reads the content from now on from its synced journal record,
// at off in the segment seg, rather than from the scratch file, whose
// pages would otherwise take memory twice and might be written back. The
// segment is opened anew (not dup'ed: that would share the lock with
// which the journal tells other processes it is live). It keeps the
// scratch file if the segment cannot be opened.
func (c *chunks) toSegment(seg *os.File, off int64) {
	f, err := os.Open(seg.Name())
	if err != nil {
		return
	}
	c.t.scratch.put(c.f)
	c.f, c.off, c.isScratch = f, off, false
	if c.tail != nil {
		hotChunks.Put(c.tail)
		c.tail = nil
	}
}

// parts are the content's bytes, piece by piece (memory mode only).
func (c *chunks) parts() [][]byte {
	out := make([][]byte, 0, len(c.bufs))
	for i, b := range c.bufs {
		end := hotChunk
		if i == len(c.bufs)-1 {
			end = c.n - i*hotChunk
		}
		out = append(out, b[:end])
	}
	return out
}

func (c *chunks) mem() int64 { return int64(len(c.bufs)) * hotChunk }

// section reads the content of a file-mode message, tail flushed.
func (c *chunks) section() *io.SectionReader {
	return io.NewSectionReader(c.f, c.off, int64(c.n))
}

// reader reads the content; it is valid until release.
func (c *chunks) reader() io.ReadCloser {
	if c.f != nil {
		return io.NopCloser(c.section())
	}
	parts := c.parts()
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		rs[i] = bytes.NewReader(p)
	}
	return io.NopCloser(io.MultiReader(rs...))
}

// bytes copies the content.
func (c *chunks) bytes() ([]byte, error) {
	b := make([]byte, c.n)
	if c.f != nil {
		if _, err := io.ReadFull(c.section(), b); err != nil {
			return nil, fmt.Errorf("spool: read content: %w", err)
		}
		return b, nil
	}
	b = b[:0]
	for _, p := range c.parts() {
		b = append(b, p...)
	}
	return b, nil
}

func (c *chunks) writeTo(w io.Writer) error {
	if c.f != nil {
		// What the file has, then the tail not flushed to it: a short
		// file is an error, never a message cut short.
		n := int64(c.n - c.tailN)
		if m, err := io.CopyN(w, io.NewSectionReader(c.f, c.off, n), n); err != nil {
			if err == io.EOF {
				return fmt.Errorf("spool: content file holds %d of %d bytes", m, n)
			}
			return err
		}
		if c.tailN > 0 {
			_, err := w.Write(c.tail[:c.tailN])
			return err
		}
		return nil
	}
	for _, p := range c.parts() {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func (c *chunks) release() {
	for _, b := range c.bufs {
		hotChunks.Put(b)
	}
	c.t.mem.Add(-c.mem())
	c.bufs, c.n = nil, 0
	if c.f != nil {
		if c.isScratch {
			c.t.scratch.put(c.f)
		} else {
			c.f.Close()
		}
		c.f, c.off, c.isScratch = nil, 0, false
		c.t.files.Add(-1)
		c.t.roomMade()
	}
	if c.tail != nil {
		hotChunks.Put(c.tail)
		c.tail, c.tailN = nil, 0
	}
}

// hotMsg is one message served from the journal.
type hotMsg struct {
	id string

	mu      sync.Mutex // guards the fields below
	seg     uint64     // the journal segment holding its record
	state   State      // New (an id reserved by a Writer), Ready or Held
	env     []byte
	content chunks
	claimed bool
	as      State // the claim's state for the envelope (Claimed, or as it was for an administrator)
	// files: written out, the files are the message now (and the
	// entry is out of the table). lock is the content file's lock,
	// taken for the claim that held the message when it was written.
	files bool
	lock  *os.File
	gone  bool // deleted
}

// hotTable is the Spool's served messages, by id.
type hotTable struct {
	mu  sync.Mutex
	m   map[string]*hotMsg
	n   int          // accepted entries
	mem atomic.Int64 // bytes of chunks held, by Writers and entries
	// files counts chunks in file mode (hotMaxFiles).
	files   atomic.Int64
	scratch scratchPool
	// waiting counts Writers in waitRoom; room wakes one of them when
	// a file-mode message lets go of its slot.
	waiting atomic.Int32
	room    chan struct{}
}

// errNoScratch: every file-mode slot (hotMaxFiles) is taken.
var errNoScratch = errors.New("spool: every scratch slot is taken")

// inFlowDelay bounds how long a message being received waits for a
// file-mode slot before it takes its own files instead (Writer.toScratch).
const inFlowDelay = time.Second

// waitRoom waits until a file-mode slot may have come free, or deadline;
// it returns false at the deadline.
func (t *hotTable) waitRoom(deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t.waiting.Add(1)
	defer t.waiting.Add(-1)
	if t.files.Load() < hotMaxFiles {
		return true // freed before this waiter was counted
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.room:
		return true
	case <-timer.C:
		return false
	}
}

// roomMade wakes a Writer waiting for a slot, if any.
func (t *hotTable) roomMade() {
	if t.waiting.Load() > 0 {
		select {
		case t.room <- struct{}{}:
		default:
		}
	}
}

// reserve takes id for a Writer, unless a served message or a file has it.
func (s *Spool) reserve(id string) bool {
	if _, err := os.Lstat(s.contentPath(id)); err == nil {
		return false
	}
	t := &s.hot
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; ok {
		return false
	}
	if t.m == nil {
		t.m = map[string]*hotMsg{}
	}
	t.m[id] = &hotMsg{id: id, state: New}
	return true
}

// unreserve lets go of a Writer's id.
func (s *Spool) unreserve(id string) {
	t := &s.hot
	t.mu.Lock()
	if e := t.m[id]; e != nil && e.state == New {
		delete(t.m, id)
	}
	t.mu.Unlock()
}

// accepted puts e, synced in the journal, in the table in place of its
// reservation.
func (s *Spool) accepted(e *hotMsg) {
	t := &s.hot
	t.mu.Lock()
	t.m[e.id] = e
	t.n++
	t.mu.Unlock()
}

// drop takes e out of the table; the caller holds e.mu.
func (s *Spool) drop(e *hotMsg) {
	t := &s.hot
	t.mu.Lock()
	if t.m[e.id] == e {
		delete(t.m, e.id)
		t.n--
	}
	t.mu.Unlock()
}

// serving says whether any message is served from memory now.
func (s *Spool) serving() bool {
	t := &s.hot
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n > 0
}

// served returns the accepted entry for id, or nil.
func (s *Spool) served(id string) *hotMsg {
	t := &s.hot
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[id]; e != nil && e.state != New {
		return e
	}
	return nil
}

// servedUpTo lists the accepted entries whose record is in segment seg or
// an older one (all of them for seg 0).
func (s *Spool) servedUpTo(seg uint64) []*hotMsg {
	t := &s.hot
	t.mu.Lock()
	var out []*hotMsg
	for _, e := range t.m {
		if e.state != New {
			out = append(out, e)
		}
	}
	t.mu.Unlock()
	if seg == 0 {
		return out
	}
	kept := out[:0]
	for _, e := range out {
		e.mu.Lock() // after t.mu is released: the order is e.mu, then t.mu
		if e.seg <= seg {
			kept = append(kept, e)
		}
		e.mu.Unlock()
	}
	return kept
}

// readServed returns a served message's envelope and state, or ok false
// if it has files (or is gone).
func (s *Spool) readServed(id string) (env *Envelope, st State, ok bool, err error) {
	e := s.served(id)
	if e == nil {
		return nil, 0, false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.files || e.gone {
		return nil, 0, false, nil
	}
	st = e.state
	if e.claimed {
		st = e.as
	}
	env, err = unmarshalBytes(e.env)
	if err != nil {
		return nil, 0, true, fmt.Errorf("spool: %s: %w", id, err)
	}
	env.ID = id
	return env, st, true, nil
}

// Served says whether a message is served from the journal by this
// process: it has no files yet (they are written within about two
// seconds, or never if it is delivered first).
func (s *Spool) Served(id string) bool {
	e := s.served(id)
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.files && !e.gone
}

// servedEntries lists the served messages for List.
func (s *Spool) servedEntries() []Entry {
	t := &s.hot
	t.mu.Lock()
	es := make([]*hotMsg, 0, len(t.m))
	for _, e := range t.m {
		if e.state != New {
			es = append(es, e)
		}
	}
	t.mu.Unlock()
	var out []Entry
	for _, e := range es {
		e.mu.Lock()
		if !e.files && !e.gone {
			st := e.state
			if e.claimed {
				st = e.as
			}
			out = append(out, Entry{ID: e.id, State: st})
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// writeOut writes e's files, not synced (the checkpoint's syncfs does
// that before the journal segment holding e's record goes), and takes e
// out of the table. A claimed message keeps its content lock, for the
// claim; the caller holds e.mu.
func (s *Spool) writeOut(e *hotMsg) error {
	if e.files || e.gone {
		return nil
	}
	st := e.state
	if e.claimed {
		st = e.as
	}
	lock, err := s.writeFiles(e.id, st, e.env, &e.content)
	if err != nil {
		return err
	}
	e.files = true
	s.drop(e)
	if e.claimed {
		e.lock = lock // the claim reads the content from memory until it ends
		return nil
	}
	e.content.release()
	return lock.Close()
}

// writeFiles writes a message's content and its envelope in state st, and
// returns the content file locked. The content is written under a hidden
// name and renamed into place already locked, so that no other process
// finds it unlocked without its envelope.
func (s *Spool) writeFiles(id string, st State, env []byte, content interface{ writeTo(io.Writer) error }) (*os.File, error) {
	tmp := filepath.Join(s.dir, "."+id+".content")
	f, err := openFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: write out %s: %w", id, err)
	}
	s.chown(f)
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("spool: write out %s: %w", id, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if err := content.writeTo(f); err != nil {
		return fail(err)
	}
	if err := syscall.Link(tmp, s.contentPath(id)); err != nil {
		// Link, not rename: it fails rather than replace a file another
		// process made under the same id since.
		return fail(err)
	}
	os.Remove(tmp)
	// The envelope too is written under a hidden name and renamed, so
	// that a process killed half way leaves no torn envelope behind
	// (replay writes a missing one from the record).
	etmp := filepath.Join(s.dir, "."+id+".envelope")
	err = s.writeFile(etmp, env, 0o640)
	if err == nil {
		err = rename(etmp, s.envelopePath(id, st))
	}
	if err != nil {
		os.Remove(etmp)
		os.Remove(s.contentPath(id))
		return fail(err)
	}
	return f, nil
}

// writeOutAll writes out every served message whose record is in segment
// seg or older (every one, for seg 0).
func (s *Spool) writeOutAll(seg uint64) error {
	var first error
	for _, e := range s.servedUpTo(seg) {
		e.mu.Lock()
		err := s.writeOut(e)
		e.mu.Unlock()
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ContentSize is the size of a message's content, served or in its file.
func (s *Spool) ContentSize(id string) (int64, error) {
	if e := s.served(id); e != nil {
		e.mu.Lock()
		ok := !e.files && !e.gone
		var n int64
		if ok {
			// Once written out, the content belongs to the claim
			// that may hold it, which releases it without e.mu.
			n = int64(e.content.n)
		}
		e.mu.Unlock()
		if ok {
			return n, nil
		}
	}
	fi, err := os.Lstat(s.contentPath(id))
	if err != nil {
		if os.IsNotExist(err) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("spool: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, notRegular(id)
	}
	return fi.Size(), nil
}

// notRegular is the error for a content file that is a named pipe, a
// device or a directory: reading it could wait for good, or never end.
func notRegular(id string) error {
	return fmt.Errorf("spool: %s.content is %w", id, errNotRegular)
}

// errNotRegular is what notRegular's errors wrap: recovery sets such a
// message aside, and RemoveUnreadable removes it.
var errNotRegular = errors.New("not a regular file")

// OpenContent opens a message's content for reading without a lock, for
// showing it: a served message's is copied, since its claim may end while
// the caller reads. The content never changes while a message lives; a
// message delivered meanwhile gives ErrNotFound.
func (s *Spool) OpenContent(id string) (io.ReadCloser, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if e := s.served(id); e != nil {
		e.mu.Lock()
		var b []byte
		var err error
		ok := !e.files && !e.gone
		if ok {
			b, err = e.content.bytes()
		}
		e.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if ok {
			return io.NopCloser(bytes.NewReader(b)), nil
		}
	}
	// O_NONBLOCK: a named pipe in the content's place opens at once
	// (and is refused below) instead of waiting for a writer for good.
	// O_NOFOLLOW: a symbolic link there is refused as a claim refuses it.
	f, err := os.OpenFile(s.contentPath(id), os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if os.IsNotExist(err) {
		return nil, ErrNotFound
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, notRegular(id)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(id)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
