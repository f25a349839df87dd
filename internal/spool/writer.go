package spool

import (
	"bufio"
	"fmt"
	"os"
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
	done     bool
}

// Create starts a new message.
func (s *Spool) Create(now time.Time) (*Writer, error) {
	for range 5 {
		id := s.newID(now)
		f, err := os.OpenFile(s.contentPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("spool: create: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			os.Remove(s.contentPath(id))
			return nil, fmt.Errorf("spool: lock new message: %w", err)
		}
		return &Writer{s: s, id: id, f: f, bw: bufio.NewWriterSize(f, 64<<10)}, nil
	}
	return nil, fmt.Errorf("spool: create: no free id")
}

// ID is the new message's id.
func (w *Writer) ID() string { return w.id }

// Write appends to the content.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	w.n += int64(n)
	return n, err
}

// Size is the number of content bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Prepare makes the content durable and writes the envelope in state New.
// The message is not accepted yet: a crash now quarantines it on restart.
func (w *Writer) Prepare(env *Envelope) error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("spool: write content: %w", err)
	}
	if err := w.s.syncFile(w.f); err != nil {
		return fmt.Errorf("spool: fsync content: %w", err)
	}
	env.ID = w.id
	if err := w.s.writeAtomic(w.s.envelopePath(w.id, New), env.Marshal()); err != nil {
		return fmt.Errorf("spool: write envelope: %w", err)
	}
	w.prepared = true
	return nil
}

// ContentPath and EnvelopePath name the files of a prepared message, for
// filters that run between Prepare and Commit.
func (w *Writer) ContentPath() string  { return w.s.contentPath(w.id) }
func (w *Writer) EnvelopePath() string { return w.s.envelopePath(w.id, New) }

// Commit accepts the message: the envelope is renamed to state Ready (or
// Held, if hold is true) and the directory fsynced. Only after Commit has
// returned nil may the client be told 250.
func (w *Writer) Commit(hold bool) error {
	if !w.prepared {
		return fmt.Errorf("spool: commit before prepare")
	}
	to := Ready
	if hold {
		to = Held
	}
	if err := os.Rename(w.s.envelopePath(w.id, New), w.s.envelopePath(w.id, to)); err != nil {
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
	return w.f.Close() // releases the lock
}

// Abort throws the message away. It is for messages the client was not told
// were accepted: a rejected or broken transaction, a proxied message.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	os.Remove(w.s.envelopePath(w.id, New))
	os.Remove(w.s.contentPath(w.id))
	w.f.Close()
}

// Relock takes the lock again on the content file as it is now. A filter
// that rewrites the content by renaming a new file over it (E-MailRelay's
// addsig does "mv $1.tmp $1") leaves the old lock on an inode nobody uses.
func (w *Writer) Relock() error {
	nf, err := relock(w.s.contentPath(w.id), w.f)
	if err != nil {
		return err
	}
	w.f = nf
	return nil
}
