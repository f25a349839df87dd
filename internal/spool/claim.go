package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Claim is a message taken by one worker. While the Claim is open, no other
// worker in any process can claim, hold, release or delete the message.
type Claim struct {
	s    *Spool
	id   string
	cur  State // the envelope's state while claimed
	lock *os.File
	Env  *Envelope
	done bool
	// hot is the message while it is served from memory (hot.go);
	// once written out, the claim goes on with its files.
	hot *hotMsg
	// mem is the served content the claim still reads from, released
	// when the claim ends.
	mem *chunks
	// size is the content's size as the lock's fstat found it, while
	// sizeOf is the lock; a path handed out or a Relock forgets it.
	size   int64
	sizeOf *os.File
}

// Claim takes a Ready message for delivery: its content is locked and its
// envelope renamed to state Claimed.
func (s *Spool) Claim(id string) (*Claim, error) {
	return s.claim(id, Ready, Claimed)
}

// Lock takes a message in any state but New for an administrative change;
// its envelope keeps its name. Release it with Move or Unlock, or Delete it.
func (s *Spool) Lock(id string) (*Claim, error) {
	st, err := s.find(id)
	if err != nil {
		return nil, err
	}
	if st == New {
		return nil, ErrBusy
	}
	return s.claim(id, st, st)
}

func (s *Spool) claim(id string, from, to State) (*Claim, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if e := s.served(id); e != nil {
		if c, err := s.claimServed(e, from, to); c != nil || err != nil {
			return c, err
		}
		// Written out meanwhile: the files are the message now.
	}
	lock, size, err := s.lockContentSize(id)
	if err == nil && from != to && s.guarded(id) && s.envelopeIn(id, from) && s.putBackGuard(id) {
		// A client filter's run was cut short (guard.go), by a kill or
		// a power loss, before recovery got to it. (Not while a claim
		// holds the message, its envelope renamed: a filter that
		// renamed a new content file into place leaves it unlocked
		// until its claim's Relock.)
		lock.Close()
		lock, size, err = s.lockContentSize(id)
	}
	if err != nil {
		return nil, err
	}
	if size == 0 && from != to {
		// Not delivered as an empty message (recoverOne).
		lock.Close()
		return nil, emptyContent(id)
	}
	c := &Claim{s: s, id: id, cur: to, lock: lock, size: size, sizeOf: lock}
	env, err := s.readEnvelope(id, from)
	if err != nil {
		lock.Close()
		return nil, err
	}
	c.Env = env
	if from != to {
		if err := rename(s.envelopePath(id, from), s.envelopePath(id, to)); err != nil {
			lock.Close()
			if errors.Is(err, os.ErrNotExist) {
				return nil, ErrNotFound
			}
			return nil, fmt.Errorf("spool: claim %s: %w", id, err)
		}
		// No directory fsync: if the rename is lost in a crash, the
		// message is simply Ready again, which is what Recover would
		// make of it anyway.
	}
	return c, nil
}

// claimServed claims a message served from memory, or returns nil, nil
// if it has been written out since the caller found it.
func (s *Spool) claimServed(e *hotMsg, from, to State) (*Claim, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.files || e.gone:
		return nil, nil
	case e.claimed:
		return nil, ErrBusy
	case e.state != from:
		return nil, ErrNotFound
	}
	env, err := unmarshalBytes(e.env)
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", e.id, err)
	}
	env.ID = e.id
	e.claimed, e.as = true, to
	return &Claim{s: s, id: e.id, cur: to, Env: env, hot: e}, nil
}

// files makes the claim work on the message's files from now on, writing
// them out if it is still served from memory: for a change of its
// envelope, and for readers that need a path.
func (c *Claim) files() error {
	e := c.hot
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := c.s.writeOut(e); err != nil {
		return err
	}
	c.lock, e.lock = e.lock, nil
	c.mem, c.hot = &e.content, nil
	return nil
}

// end releases the served content a claim read, when the claim is over.
func (c *Claim) end() {
	if c.mem != nil {
		c.mem.release()
		c.mem = nil
	}
}

func (s *Spool) readEnvelope(id string, st State) (*Envelope, error) {
	name := s.envelopePath(id, st)
	b, err := readEnvelopeFile(name)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
		if target, lerr := os.Readlink(name); lerr == nil {
			// Not renamed meanwhile: a link, which no retry mends. It
			// is never read: a line of its target would be quoted in
			// the parse error, into the logs and queue list (a link
			// to /etc/shadow, and root's hash is there).
			why := "not read: an envelope must be the spool's own file"
			if _, serr := os.Stat(name); errors.Is(serr, os.ErrNotExist) {
				why = "which does not exist"
			}
			return nil, fmt.Errorf("spool: %s%s: a symbolic link to %s, %s", id, stateSuffix[st], target, why)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	env, err := unmarshalBytes(b)
	if err != nil {
		return nil, fmt.Errorf("spool: %s%s: %w", id, stateSuffix[st], err)
	}
	env.ID = id
	if env.Arrival.IsZero() {
		env.Arrival = s.foreignArrival(id)
	}
	return env, nil
}

// foreignArrival is the arrival of a message whose envelope has none:
// one that E-MailRelay, emailrelay-submit or a script put in the spool.
// It is the time in E-MailRelay's file name (emailrelay.PID.SECONDS.SEQ),
// else the content file's modification time, else now; never the zero
// time, which would make the message look centuries old (expired at its
// first deferral).
func (s *Spool) foreignArrival(id string) time.Time {
	if t, ok := EmailRelayIDTime(id); ok {
		return t
	}
	if fi, err := os.Stat(s.contentPath(id)); err == nil {
		return fi.ModTime()
	}
	return time.Now()
}

// EmailRelayIDTime is the time in an id E-MailRelay made, its file name's
// SECONDS (emailrelay.PID.SECONDS.SEQ); ok is false for an id of another
// form. IDTime reads relaykeeper's own.
func EmailRelayIDTime(id string) (t time.Time, ok bool) {
	if f := strings.Split(id, "."); len(f) == 4 && f[0] == "emailrelay" {
		if secs, err := strconv.ParseInt(f[2], 10, 64); err == nil && secs > 0 {
			return time.Unix(secs, 0), true
		}
	}
	return time.Time{}, false
}

// ID is the claimed message's id.
func (c *Claim) ID() string { return c.id }

// Content reads the message's content from the start, through the
// descriptor the claim holds locked (Relock follows a replaced file).
// Closing it leaves the claim's lock alone.
func (c *Claim) Content() (io.ReadCloser, int64, error) {
	if e := c.hot; e != nil {
		// Valid for as long as the claim: only its end releases the
		// chunks, even once the message has been written out.
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.content.reader(), int64(e.content.n), nil
	}
	if c.sizeOf != c.lock {
		fi, err := c.lock.Stat()
		if err != nil {
			return nil, 0, fmt.Errorf("spool: %w", err)
		}
		c.size, c.sizeOf = fi.Size(), c.lock
	}
	return io.NopCloser(io.NewSectionReader(c.lock, 0, c.size)), c.size, nil
}

// Save writes c.Env durably, in place of the envelope.
func (c *Claim) Save() error {
	if err := c.files(); err != nil {
		return err
	}
	if err := c.s.writeAtomic(c.s.envelopePath(c.id, c.cur), c.Env.Marshal()); err != nil {
		return fmt.Errorf("spool: save %s: %w", c.id, err)
	}
	if err := c.s.syncDir(); err != nil {
		return fmt.Errorf("spool: save %s: %w", c.id, err)
	}
	return nil
}

// Move saves c.Env, renames the envelope to state to, and releases the claim.
func (c *Claim) Move(to State) error {
	if c.done {
		return fmt.Errorf("spool: claim %s already released", c.id)
	}
	if err := c.files(); err != nil {
		return err
	}
	if err := c.s.writeAtomic(c.s.envelopePath(c.id, c.cur), c.Env.Marshal()); err != nil {
		return fmt.Errorf("spool: save %s: %w", c.id, err)
	}
	if to != c.cur {
		if err := rename(c.s.envelopePath(c.id, c.cur), c.s.envelopePath(c.id, to)); err != nil {
			return fmt.Errorf("spool: move %s to %s: %w", c.id, to, err)
		}
		c.cur = to // whatever the directory fsync says, the envelope is there now
	}
	if err := c.s.syncDir(); err != nil {
		return fmt.Errorf("spool: move %s: %w", c.id, err)
	}
	c.done = true
	c.end()
	return c.lock.Close()
}

// Unlock releases the claim without changing anything on disk. A message
// claimed for delivery goes back to Ready.
func (c *Claim) Unlock() error {
	if c.done {
		return nil
	}
	if e := c.hot; e != nil {
		e.mu.Lock()
		if !e.files && bytes.Equal(c.Env.Marshal(), e.env) {
			// Unchanged: served again, as journalled.
			e.claimed = false
			e.mu.Unlock()
			c.done, c.hot = true, nil
			return nil
		}
		e.mu.Unlock()
		// Written out, or changed: the changes are kept, as Move
		// keeps them for a message in files.
		if err := c.files(); err != nil {
			// They cannot be (a full disk): the claim ends all the
			// same, and the message is served again as journalled,
			// rather than left claimed by nobody.
			e.mu.Lock()
			if !e.files {
				e.claimed = false
				c.done, c.hot = true, nil
			}
			e.mu.Unlock()
			return err
		}
	}
	if c.cur == Claimed {
		err := c.Move(Ready)
		if err == nil {
			return nil
		}
		// The changes cannot be recorded (a full disk): the message goes
		// back as it was, and the claim ends all the same.
		if c.cur == Claimed {
			rename(c.s.envelopePath(c.id, Claimed), c.s.envelopePath(c.id, Ready))
		}
		c.done = true
		c.end()
		c.lock.Close()
		return err
	}
	c.done = true
	c.end()
	return c.lock.Close()
}

// Delete removes the message: every recipient is done with, or an
// administrator said so. The envelope goes first, so that a crash in between
// leaves an orphan content file (quarantined on restart), never an envelope
// that would be delivered again without content. With a journal open, the
// removal is noted in it and left to the next checkpoint to sync.
func (c *Claim) Delete() error {
	return c.remove(false)
}

// Delivered is Delete for the scheduler, once every recipient is done with:
// with a journal open, the files are removed in the background (remove.go),
// and until then the message stays claimed. Administrative deletions use
// Delete, after which the message is gone from every listing at once.
func (c *Claim) Delivered() error {
	return c.remove(true)
}

func (c *Claim) remove(later bool) error {
	if c.done {
		return fmt.Errorf("spool: claim %s already released", c.id)
	}
	if e := c.hot; e != nil {
		e.mu.Lock()
		if !e.files {
			e.gone = true
			c.s.drop(e)
			e.content.release()
			e.mu.Unlock()
			c.done, c.hot = true, nil
			if j := c.s.journal.Load(); j != nil {
				// If this note is lost (a power loss, a journal that
				// broke), the message may be delivered twice.
				j.done(c.id)
			}
			return nil
		}
		e.mu.Unlock()
		if err := c.files(); err != nil {
			return err
		}
	}
	c.done = true
	c.end()
	// Noted before the files go, so that a replay finds the note and
	// does not bring the message back.
	envPath := c.s.envelopePath(c.id, c.cur)
	noted := false
	if j := c.s.journal.Load(); j != nil {
		if !later {
			noted = j.done(c.id) == nil
		} else if settled, err := j.doneHeld(c.id); err == nil {
			c.s.removeLater(removal{id: c.id, envPath: envPath, lock: c.lock, settled: settled})
			return nil // remove.go
		}
	}
	defer c.lock.Close()
	if !later {
		c.s.removeStrayEnvelopes(c.id, c.cur)
	}
	if err := c.s.removeFiles(c.id, envPath); err != nil {
		return fmt.Errorf("spool: delete %s: %w", c.id, err)
	}
	if noted {
		// The next checkpoint makes the removal durable; if a power
		// loss comes first, the message may be delivered again.
		return nil
	}
	return c.s.syncDir()
}

// Read returns a message's envelope and state without claiming it. The
// envelope may change under the caller; it is for listing and showing.
func (s *Spool) Read(id string) (*Envelope, State, error) {
	if env, st, ok, err := s.readServed(id); ok {
		return env, st, err
	}
	for range 3 {
		st, err := s.find(id)
		if err != nil {
			return nil, 0, err
		}
		env, err := s.readEnvelope(id, st)
		if errors.Is(err, ErrNotFound) {
			continue // renamed between find and open
		}
		return env, st, err
	}
	return nil, 0, ErrBusy
}

// Relock takes the lock again on the content file as it is now, after a
// client filter may have replaced it, and re-reads the envelope, which the
// filter may have edited.
func (c *Claim) Relock() error {
	c.sizeOf = nil
	if err := c.files(); err != nil {
		return err
	}
	nf, err := relock(c.s.contentPath(c.id), c.lock)
	if err != nil {
		return err
	}
	c.lock = nf
	// The filter wrote what it changed to the page cache alone, and a
	// deferral after it fsyncs only the envelope it writes anew and the
	// directory: a power loss would leave the content of a message
	// acknowledged long ago empty or cut short. Once it is synced, the
	// copy kept while the filter ran (GuardContent) goes.
	if err := c.s.syncFile(nf); err != nil {
		return fmt.Errorf("spool: fsync %s after the filter: %w", c.id, err)
	}
	os.Remove(c.s.guardPath(c.id))
	env, err := c.s.readEnvelope(c.id, c.cur)
	if err != nil {
		return err
	}
	c.Env = env
	return nil
}

// EnvelopePath is the claimed message's envelope file now.
func (c *Claim) EnvelopePath() string {
	c.files()
	return c.s.envelopePath(c.id, c.cur)
}

// ContentPath is the claimed message's content file, written out first if
// the message is served from memory: for filters, notices and anything
// else that reads it by name. The error is the write-out's (a full disk):
// the file is then not there to read.
func (c *Claim) ContentPath() (string, error) {
	c.sizeOf = nil // whoever has the path may change the file
	if err := c.files(); err != nil {
		return "", err
	}
	return c.s.contentPath(c.id), nil
}
