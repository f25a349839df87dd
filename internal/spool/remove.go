package spool

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// Removing a delivered message's files happens off the worker's path when a
// journal is open. The worker notes the removal in the journal and goes on
// to its next message; a remover unlinks the envelope and the content and
// then closes the content lock. Freeing a file's blocks can wait on the
// disk: on ext4 mounted with discard and without a journal, the unlink(2)
// of a synced file, or the close(2) that drops its last reference, waits
// for the TRIM. In a drain of 20,000 messages on such a disk, twenty
// workers spent a quarter of their time there instead of delivering.
//
// While a removal waits, the message keeps its claim: its envelope is still
// named Claimed and its content locked, so no other worker or process takes
// it. The journal's checkpoint waits for the removals noted in the segment
// it retires (the note holds the segment's inflight group), so a segment
// never goes while a message it notes as done still has files. A kill in
// between leaves the files and the note; replay removes them.

// maxPendingRemovals bounds the queue, and with it the content locks held
// open: beyond it a worker waits for room.
const maxPendingRemovals = 1024

// removers is how many goroutines remove at most. Where the file system
// discards freed blocks at once (ext4 mounted with discard and no journal),
// each unlink waits for the disk; a few removers overlap those waits, more
// only queue at the disk (bench/README.md, "Removing delivered messages").
const removers = 4

// removal is one delivered message's files to remove.
type removal struct {
	id      string
	envPath string
	lock    *os.File // the content lock, closed after the unlinks
	settled func()   // the journal note's segment may retire after this
}

// remover is the spool's background remover: up to removers goroutines,
// started as the queue grows and ending when it is empty.
type remover struct {
	mu      sync.Mutex
	q       []removal
	running int // goroutines
	full    bool
	// room is broadcast when a full queue has drained to half (the
	// workers waiting in removeLater go on together, not one wake-up
	// per removal), idle when the last remover stops (WaitRemovals).
	room, idle *sync.Cond
}

// removeLater queues r, waiting while the queue is full.
func (s *Spool) removeLater(r removal) {
	rm := &s.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.room == nil {
		rm.room, rm.idle = sync.NewCond(&rm.mu), sync.NewCond(&rm.mu)
	}
	for len(rm.q) >= maxPendingRemovals || rm.full {
		rm.full = true
		rm.room.Wait()
	}
	rm.q = append(rm.q, r)
	if rm.running < removers && len(rm.q) > rm.running*8 {
		rm.running++
		go s.removeLoop()
	}
}

func (s *Spool) removeLoop() {
	rm := &s.rm
	var batch []removal
	for {
		rm.mu.Lock()
		k := min(len(rm.q), 16)
		batch = append(batch[:0], rm.q[:k]...)
		clear(rm.q[:k])
		rm.q = rm.q[k:]
		if rm.full && len(rm.q) <= maxPendingRemovals/2 {
			rm.full = false
			rm.room.Broadcast()
		}
		if k == 0 {
			rm.running--
			if rm.running == 0 {
				rm.idle.Broadcast()
			}
		}
		rm.mu.Unlock()
		if k == 0 {
			return
		}
		for i, r := range batch {
			if err := s.removeFiles(r.id, r.envPath); err != nil {
				s.log.Error("removing a delivered message's files failed; it may be delivered again",
					"id", r.id, "err", err)
			}
			r.lock.Close()
			r.settled()
			batch[i] = removal{}
		}
	}
}

// removeFiles unlinks a message's envelope, then its content: a crash in
// between leaves an orphan content file (quarantined on restart), never an
// envelope without content.
func (s *Spool) removeFiles(id, envPath string) error {
	if err := os.Remove(envPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(s.contentPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// A client filter's run that did not end cleanly; almost always
	// absent. One unlink: os.Remove of a missing file tries rmdir too,
	// a system call for every delivered message.
	syscall.Unlink(s.guardPath(id))
	return nil
}

// removeStrayEnvelopes removes the envelope files of message id in states
// other than cur, before its content goes: made by hand or by a script
// (relaykeeper never makes two), such a file would outlive the message an
// administrator deleted, as an envelope without content ("queue delete"
// said "deleted" and the message was still listed, damaged). Not a New
// one: that is a receipt's.
func (s *Spool) removeStrayEnvelopes(id string, cur State) {
	for _, st := range []State{Ready, Claimed, Failed, Held} {
		if st != cur {
			os.Remove(s.envelopePath(id, st))
		}
	}
}

// RemoveUnreadable removes a message whose envelope cannot be read (torn,
// or edited by hand), under the lock a claim takes, or whose content file
// is missing (torn: content is written before the envelope and removed
// after it); Lock refuses such a message, since a claim needs both. It is
// for "queue delete", as postsuper -d removes a damaged queue file, and
// returns the state the message was in.
func (s *Spool) RemoveUnreadable(id string) (State, error) {
	st, err := s.find(id)
	switch {
	case err != nil:
		return 0, err
	case st == New:
		return st, ErrBusy
	}
	lock, err := s.lockContent(id)
	if errors.Is(err, ErrNotFound) && s.served(id) == nil {
		return st, s.removeContentless(id, st)
	}
	if errors.Is(err, errNotRegular) {
		// Nothing can lock it, nor deliver it. os.Remove takes a
		// link itself, never its target, and a directory only if
		// empty (else the error says so).
		if err := s.removeFiles(id, s.envelopePath(id, st)); err != nil {
			return st, fmt.Errorf("spool: delete %s: %w", id, err)
		}
		return st, s.syncDir()
	}
	if err != nil {
		return st, err
	}
	defer lock.Close()
	_, err = s.readEnvelope(id, st)
	var pe *ParseError
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		return st, fmt.Errorf("spool: %s%s changed meanwhile; try again", id, stateSuffix[st])
	case !errors.As(err, &pe):
		// Unread, not unreadable (EIO, EMFILE, EACCES): it may be whole.
		return st, err
	}
	if err := s.removeFiles(id, s.envelopePath(id, st)); err != nil {
		return st, fmt.Errorf("spool: delete %s: %w", id, err)
	}
	return st, s.syncDir()
}

// removeContentless removes the envelope of a message whose content file
// is missing. Nothing can lock such a message; a content file that has
// appeared meanwhile means it was not torn after all.
func (s *Spool) removeContentless(id string, st State) error {
	if _, err := os.Lstat(s.contentPath(id)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %s%s changed meanwhile; try again", id, stateSuffix[st])
	}
	if err := os.Remove(s.envelopePath(id, st)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrNotFound
		}
		return fmt.Errorf("spool: delete %s: %w", id, err)
	}
	return s.syncDir()
}

// WaitRemovals returns once every removal queued so far is done: for
// callers (tests, commands about to exit) that look at the files next.
func (s *Spool) WaitRemovals() {
	rm := &s.rm
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for rm.running > 0 {
		rm.idle.Wait()
	}
}
