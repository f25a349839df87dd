package spool

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

// syncLog records the fsyncs a Spool makes, in order.
type syncLog struct {
	mu    sync.Mutex
	kinds []string
}

func (l *syncLog) ObserveSync(kind string, _ time.Duration) {
	l.mu.Lock()
	l.kinds = append(l.kinds, kind)
	l.mu.Unlock()
}

func (l *syncLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds
	l.kinds = nil
	return k
}

// TestDur25ClassicCommitSyncsFilterEdits: on the classic path (no
// journal, or a message over 1 MiB), Prepare fsyncs the content and the
// envelope, then a server filter edits them in place, then Commit renames
// the envelope and fsyncs the directory. The filter's edits were never
// fsynced, yet the client heard 250: after a power loss the content was
// empty and the envelope ended in zeros (TestDur25FilterEditsSyncedBeforeAck
// in test/e2e), the message quarantined, not delivered. Commit now fsyncs
// both files again when a filter has had them.
func TestDur25ClassicCommitSyncsFilterEdits(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		s, w := dur25Writer(t, "Subject: as received\r\n\r\nbody\r\n")
		log := &syncLog{}
		s.ObserveSyncs(log)
		if err := w.Prepare(&Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "b@example.net", Status: Pending}}}); err != nil {
			t.Fatal(err)
		}
		if filtered {
			// The filter: the content rewritten in place, a line
			// added to the envelope.
			if err := os.WriteFile(w.ContentPath(), []byte("X-Signed: yes\r\nSubject: as received\r\n\r\nbody\r\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(w.EnvelopePath(), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("X-Filter-Note: seen\r\n")
			f.Close()
			if err := w.Relock(); err != nil {
				t.Fatal(err)
			}
		}
		log.take()
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
		files := 0
		for _, k := range log.take() {
			if k == SyncFile {
				files++
			}
		}
		want := 0
		if filtered {
			want = 2 // the content and the envelope, as the filter left them
		}
		if files != want {
			t.Errorf("filtered %v: Commit fsynced %d files; want %d", filtered, files, want)
		}
	}
}

// TestDur25ClientFilterRelockSyncs: a client filter rewrites a queued
// message's content in place; the deferral after it fsynced only the
// envelope and the directory, so a power loss left the content empty
// (TestDur25ClientFilterEditsSynced in test/e2e). Relock, which the
// scheduler calls after the filter, now fsyncs the content.
func TestDur25ClientFilterRelockSyncs(t *testing.T) {
	s, id := dur25Queued(t)
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	path, err := c.ContentPath()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("X-Signed: yes\r\nSubject: queued\r\n\r\nbody\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	log := &syncLog{}
	s.ObserveSyncs(log)
	if err := c.Relock(); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) == 0 || got[0] != SyncFile {
		t.Errorf("Relock after the filter fsynced %v; want the content", got)
	}
	if err := c.Move(Ready); err != nil {
		t.Fatal(err)
	}
}

// TestDur25GuardPutBack: a client filter rewriting a queued message's
// content in place is cut short (a power loss, a kill), leaving the
// content empty or half written. The copy GuardContent kept is put back,
// by recovery or by the next claim, whichever comes first; a run that
// ended (Relock) leaves no copy.
func TestDur25GuardPutBack(t *testing.T) {
	const want = "Subject: queued\r\n\r\nbody\r\n"
	for _, by := range []string{"recovery", "claim", "relock"} {
		s, id := dur25Queued(t)
		c, err := s.Claim(id)
		if err != nil {
			t.Fatal(err)
		}
		path, _ := c.ContentPath()
		if err := c.GuardContent(); err != nil {
			t.Fatal(err)
		}
		// The filter truncates the content and dies half way.
		os.WriteFile(path, []byte("X-Signed: y"), 0o640)
		if by == "relock" {
			os.WriteFile(path, []byte("X-Signed: yes\r\n"+want), 0o640)
			if err := c.Relock(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(s.guardPath(id)); err == nil {
				t.Errorf("relock: the guard is left after the filter ended")
			}
			c.Move(Ready)
			continue
		}
		c.lock.Close() // the process died: its lock is gone
		os.Rename(s.envelopePath(id, Claimed), s.envelopePath(id, Ready))
		if by == "recovery" {
			if _, err := s.RecoverFiles(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		c, err = s.Claim(id)
		if err != nil {
			t.Fatalf("%s: claim after the interrupted filter: %v", by, err)
		}
		r, _, _ := c.Content()
		got, _ := io.ReadAll(r)
		if string(got) != want {
			t.Errorf("%s: content after the interrupted filter %q; want %q as accepted", by, got, want)
		}
		if _, err := os.Lstat(s.guardPath(id)); err == nil {
			t.Errorf("%s: the guard is left", by)
		}
		if err := c.Delivered(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDur25GuardLeftWhileFilterRuns: a client filter that renames a new
// content file into place leaves it unlocked until its claim's Relock; a
// claim by another worker meanwhile must not take the guard for the copy
// of an interrupted run and put it back over the filter's work.
func TestDur25GuardLeftWhileFilterRuns(t *testing.T) {
	s, id := dur25Queued(t)
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := c.ContentPath()
	if err := c.GuardContent(); err != nil {
		t.Fatal(err)
	}
	const filtered = "X-Signed: yes\r\nSubject: queued\r\n\r\nbody\r\n"
	os.WriteFile(path+".new", []byte(filtered), 0o640)
	os.Rename(path+".new", path) // "mv $1.tmp $1"
	if _, err := s.Claim(id); err == nil {
		t.Fatal("a second claim took the message while its filter ran")
	}
	if got, _ := os.ReadFile(path); string(got) != filtered {
		t.Errorf("content while the filter runs %q; want the filter's %q", got, filtered)
	}
	if err := c.Relock(); err != nil {
		t.Fatal(err)
	}
	r, _, _ := c.Content()
	if got, _ := io.ReadAll(r); string(got) != filtered {
		t.Errorf("content after the filter %q; want %q", got, filtered)
	}
	if s.guarded(id) {
		t.Error("the guard is left after the filter ended")
	}
	c.Move(Ready)
}

// dur25Queued is a spool in a new directory holding one queued message,
// "Subject: queued", and the message's id.
func dur25Queued(t *testing.T) (*Spool, string) {
	t.Helper()
	s, w := dur25Writer(t, "Subject: queued\r\n\r\nbody\r\n")
	if err := w.Finish(&Envelope{From: "a@example.org", Recipients: []Recipient{{Addr: "b@example.net", Status: Pending}}}); err != nil {
		t.Fatal(err)
	}
	return s, w.ID()
}

// dur25Writer is a spool in a new directory and a message being received
// into it, content written.
func dur25Writer(t *testing.T, content string) (*Spool, *Writer) {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(content))
	return s, w
}
