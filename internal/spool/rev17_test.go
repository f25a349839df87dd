package spool

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRev17ReplayLeavesSegmentBeingMade: a live relay sharing the spool
// makes its next segment empty and locks it an instant later (newSegment).
// The replay of a dead relay's journal, which a running relay now starts
// by itself (replayDead), locked such a segment in that instant, found it
// empty and removed it: the live relay's new segment failed, or, locked
// after the replay let go, held that relay's acknowledged records under
// no name a restart reads.
func TestRev17ReplayLeavesSegmentBeingMade(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s)
	id := newMessage(t, s, "Subject: dead\r\n\r\n")
	j.kill()
	// The live relay's segment, between its creation and its lock.
	making := filepath.Join(dir, journalDir, "99999999999999999999.log")
	f, err := os.OpenFile(making, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	s2, _ := Open(dir, nil)
	if !s2.deadSegment() {
		t.Fatal("the dead relay's segment was not found")
	}
	if _, err := s2.Recover(); err != nil {
		t.Fatal(err)
	}
	if _, st, err := s2.Read(id); err != nil || st != Ready {
		t.Errorf("the dead relay's message: %v, %v; want ready", st, err)
	}
	if _, err := os.Stat(making); err != nil {
		t.Errorf("the live relay's segment being made was removed by the replay: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("the live relay cannot lock its new segment: %v", err)
	}
	if s2.dead.seen(filepath.Base(making)) {
		t.Error("the segment being made is taken for replayed: it is never looked at again")
	}
	// Left empty and unlocked for long, it is a dead relay's after all.
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(making, old, old)
	if !s2.deadSegment() {
		t.Error("an old empty unlocked segment is not taken for a dead relay's")
	}
	if _, err := s2.Recover(); err != nil {
		t.Fatal(err)
	}
	if segs := s2.segments(); len(segs) != 0 {
		t.Errorf("segments %v left after the replay of an old empty one", segs)
	}
}

// TestRev17RecoveryBetweenCreateAndLock: a message's content file is
// created and locked an instant later (createFile). A recovery of the
// spool's files that came in that instant (replayDead now runs one in a
// live relay whenever a relay sharing the spool dies, while the others
// receive) found it unlocked without an envelope and moved it to
// quarantine; the writer then locked the moved file, wrote the message
// into quarantine through it and its envelope into the spool: the client
// heard 250 for a message whose content was gone from the queue. The
// writer now makes the file again when the one it locked is no longer
// under the message's name.
func TestRev17RecoveryBetweenCreateAndLock(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	other, _ := Open(dir, nil) // the other relay's recovery
	ran := false
	faultCreated = func(path string) {
		if !ran && filepath.Dir(path) == dir {
			ran = true
			other.RecoverFiles(context.Background())
		}
	}
	t.Cleanup(func() { faultCreated = nil })
	id := newMessage(t, s, "Subject: raced\r\n\r\nbody\r\n")
	if !ran {
		t.Fatal("the recovery never ran between the create and the lock")
	}
	if b, err := os.ReadFile(s.contentPath(id)); err != nil || !strings.Contains(string(b), "body") {
		t.Errorf("the accepted message's content in the spool: %q, %v; want it whole", b, err)
	}
	if _, st, err := s.Read(id); err != nil || st != Ready {
		t.Errorf("Read(%s) = %v, %v; want ready", id, st, err)
	}
	// What the recovery set aside is the empty file it found: nothing of
	// the message is written there.
	q, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	for _, de := range q {
		if fi, err := de.Info(); err == nil && fi.Size() > 0 {
			t.Errorf("quarantine holds %s, %d bytes; want nothing of the message", de.Name(), fi.Size())
		}
	}
}
