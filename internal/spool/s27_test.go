package spool

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestS27LockedAtCreateWaits: another process's recovery (or anything
// that locks a content file) held a message's content file in the instant
// between its creation and the writer's lock. The writer's lock failed at
// once, and `relaykeeper submit` (sendmail) exited 1, "spool: lock new
// message: resource temporarily unavailable", beside a running relay under
// load (gm27 saw it in TestReview12FinalAsClientWithDaemon). The writer
// now waits for such a lock to go, then checks the file is still the
// message's (TestRev17RecoveryBetweenCreateAndLock).
func TestS27LockedAtCreateWaits(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	ran := false
	faultCreated = func(path string) {
		if ran || filepath.Dir(path) != dir {
			return
		}
		ran = true
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Error(err)
		}
		time.AfterFunc(100*time.Millisecond, func() { f.Close() })
	}
	t.Cleanup(func() { faultCreated = nil })
	id := newMessage(t, s, "Subject: raced\r\n\r\nbody\r\n")
	if !ran {
		t.Fatal("nothing locked the file between the create and the lock")
	}
	if b, err := os.ReadFile(s.contentPath(id)); err != nil || !strings.Contains(string(b), "body") {
		t.Errorf("the accepted message's content: %q, %v; want it whole", b, err)
	}
}

// TestS27GuardGoesWithMessage: a message removed while its client
// filter's guard is there (a filter's run cut short, then the message
// delivered by another relay, or deleted) takes the guard with it; the
// removal unlinks it with one call rather than os.Remove's two.
func TestS27GuardGoesWithMessage(t *testing.T) {
	s, id := dur25Queued(t)
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GuardContent(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delivered(); err != nil {
		t.Fatal(err)
	}
	if !waitGone(s.guardPath(id)) {
		t.Errorf("the guard %s is left after its message was delivered", s.guardPath(id))
	}
}

// waitGone waits up to 2 s for path to go (removals may run in the
// background).
func waitGone(path string) bool {
	for range 200 {
		if _, err := os.Lstat(path); err != nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
