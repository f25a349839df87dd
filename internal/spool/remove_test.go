package spool

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// TestDeliveredRemovedLater: with a journal open, Delivered leaves the
// unlinks to the remover; until they are done the message stays claimed
// (no other claim takes it), and afterwards it is gone.
func TestDeliveredRemovedLater(t *testing.T) {
	dir, s, j := journalWithFiles(t)
	defer j.close()
	var ids []string
	for range 50 {
		ids = append(ids, newMessage(t, s, "Subject: x\r\n\r\nbody\r\n"))
	}
	for _, id := range ids {
		c, err := s.Claim(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delivered(); err != nil {
			t.Fatal(err)
		}
		if c2, err := s.Claim(id); err == nil {
			t.Errorf("%s claimed again after Delivered", id)
			c2.Unlock()
		} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBusy) {
			t.Errorf("Claim(%s) after Delivered: %v", id, err)
		}
	}
	s.WaitRemovals()
	noFiles(t, dir, "left after the removals")
}

// TestCheckpointWaitsForRemovals: a segment that notes a removal is not
// retired before the files are gone; otherwise a kill right after would
// leave the files and no note, and the message would go out twice.
func TestCheckpointWaitsForRemovals(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	defer j.close()
	settled, err := j.doneHeld("6B0252D2F906FE64")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- j.checkpoint() }()
	select {
	case err := <-done:
		t.Fatalf("checkpoint returned (%v) with a removal unsettled", err)
	case <-time.After(200 * time.Millisecond):
	}
	settled()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if segs := s.segments(); len(segs) != 1 {
		t.Errorf("segments %v; want the new one only", segs)
	}
}

// TestReplayRemovesNotedSameBoot: a kill between the journal's note and
// the unlinks leaves the files; the replay removes them, so that the
// message is not delivered again.
func TestReplayRemovesNotedSameBoot(t *testing.T) {
	dir, s, j := journalWithFiles(t)
	id := newMessage(t, s, "Subject: delivered\r\n\r\n")
	keep := newMessage(t, s, "Subject: kept\r\n\r\n")
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	// What Delivered does before the remover gets to it.
	if _, err := j.doneHeld(id); err != nil {
		t.Fatal(err)
	}
	j.kill()
	c.lock.Close()

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Read(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("delivered %s still there after replay: %v (report %+v)", id, err, rep)
	}
	if _, st, err := s2.Read(keep); err != nil || st != Ready {
		t.Errorf("Read(%s) = %v, %v; want ready", keep, st, err)
	}
	if got := files(t, dir); len(got) != 2 {
		t.Errorf("files %v; want only %s's two", got, keep)
	}
}

// TestRemoverBackpressure: more removals than the queue holds, from many
// workers at once: every one is done and settled, none twice, and
// WaitRemovals returns after the last.
func TestRemoverBackpressure(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	const workers, each = 20, 200 // 4,000 > maxPendingRemovals
	var settled sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Error(err)
					return
				}
				key := w*each + i
				s.removeLater(removal{id: "6B0252D2F906FE64", envPath: "/nonexistent", lock: f, settled: func() {
					if _, dup := settled.LoadOrStore(key, true); dup {
						t.Errorf("removal %d settled twice", key)
					}
				}})
			}
		}()
	}
	wg.Wait()
	s.WaitRemovals()
	n := 0
	settled.Range(func(any, any) bool { n++; return true })
	if n != workers*each {
		t.Errorf("%d removals settled; want %d", n, workers*each)
	}
}
