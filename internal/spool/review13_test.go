package spool

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReview13ReplayKeepsUnrestored: a daemon killed while it served a
// message from memory leaves the journal record as the message's only copy.
// If the replay at the next start cannot write the files (a full disk;
// here a directory in the content file's place stands in for it), the
// segment must stay for a later start: removing it loses an acknowledged
// message.
func TestReview13ReplayKeepsUnrestored(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	body := "Subject: only in the journal\r\n\r\n"
	id := newMessage(t, s, body)
	j.kill()
	if !noFiles(t, dir, "before the restart (the message was not served from memory)") {
		t.FailNow()
	}
	// The next start cannot write the message's files.
	if err := os.Mkdir(s.contentPath(id), 0o750); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	t.Logf("start on a spool that cannot take the files: %+v, %v", rep, err)
	// Room again; the start after that.
	if err := os.Remove(s.contentPath(id)); err != nil {
		t.Logf("the stand-in for a full disk: %v", err)
		os.RemoveAll(s.contentPath(id))
	}
	s3, _ := Open(dir, nil)
	if _, err := s3.Recover(); err != nil {
		t.Fatal(err)
	}
	env, st, err := s3.Read(id)
	got, _ := os.ReadFile(s3.contentPath(id))
	if err != nil || st != Ready || string(got) != body || env.From != "alice@example.com" {
		t.Errorf("%s after two starts: %v %v, content %q; want it ready with its content (an acknowledged message lost)", id, st, err, got)
	}
}

// TestReview13ServedRaces: in one process, with checkpoints running all
// the time, deliveries claim, read, unlock, save, fail, hand paths to a
// "filter" and delete messages served from memory, while the admin side
// lists, reads, shows and sizes them. Every message ends exactly once:
// deleted once, or left whole in files; no claim reads wrong content;
// nothing is deleted twice. Run with -race.
func TestReview13ServedRaces(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	var (
		mu      sync.Mutex
		bodies  = map[string]string{}
		deleted = map[string]int{}
		failed  = map[string]bool{}
	)
	stop := make(chan struct{})
	var bg sync.WaitGroup
	var cpErrs atomic.Int64
	// untilStopped runs f on bg again and again until stop is closed or f
	// returns false.
	untilStopped := func(f func() bool) {
		bg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !f() {
					return
				}
			}
		})
	}
	untilStopped(func() bool { // the checkpoint, as fast as it goes
		if err := j.checkpoint(); err != nil {
			cpErrs.Add(1)
		}
		return true
	})
	for range 2 { // the admin interface, /metrics, POP3's listing
		untilStopped(func() bool {
			es, err := s.List()
			if err != nil {
				t.Errorf("List: %v", err)
				return false
			}
			for _, e := range es {
				s.ContentSize(e.ID)
				s.Read(e.ID)
				if r, err := s.OpenContent(e.ID); err == nil {
					b, _ := io.ReadAll(r)
					r.Close()
					mu.Lock()
					want, ok := bodies[e.ID]
					mu.Unlock()
					if ok && len(b) > 0 && string(b) != want {
						t.Errorf("OpenContent(%s) = %q; want %q", e.ID, b, want)
					}
				}
			}
			return true
		})
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 13))
			for i := range 80 {
				body := "Subject: race " + strings.Repeat("r", rng.IntN(20000)) + "\r\n\r\n"
				id := newMessage(t, s, body)
				mu.Lock()
				bodies[id] = body
				mu.Unlock()
				for k := 0; ; k++ {
					c, err := s.Claim(id)
					if errors.Is(err, ErrBusy) {
						continue
					}
					if err != nil {
						if k == 0 {
							t.Errorf("Claim(%s): %v", id, err)
						}
						break
					}
					if got := readContent(t, c); got != body {
						t.Errorf("%s: claim read %d bytes, want %d", id, len(got), len(body))
					}
					op := (i + k) % 6
					switch {
					case op == 0 && k < 2: // a temporary failure: the envelope changes
						c.Env.Attempts++
						if err := c.Move(Ready); err != nil {
							t.Errorf("Move(%s): %v", id, err)
						}
						continue
					case op == 1 && k < 2: // nothing happened
						if err := c.Unlock(); err != nil {
							t.Errorf("Unlock(%s): %v", id, err)
						}
						continue
					case op == 2: // a client filter or a notice reads it by name
						b, err := os.ReadFile(mustPath(t, c.ContentPath))
						if err != nil || string(b) != body {
							t.Errorf("%s: ContentPath gave %d bytes, %v", id, len(b), err)
						}
						if _, err := os.Stat(c.EnvelopePath()); err != nil {
							t.Errorf("%s: EnvelopePath: %v", id, err)
						}
						if err := c.Relock(); err != nil {
							t.Errorf("Relock(%s): %v", id, err)
						}
					case op == 3: // failed for good
						if err := c.Move(Failed); err != nil {
							t.Errorf("Move(%s, Failed): %v", id, err)
						}
						mu.Lock()
						failed[id] = true
						mu.Unlock()
					case op == 4:
						c.Env.Attempts++
						if err := c.Save(); err != nil {
							t.Errorf("Save(%s): %v", id, err)
						}
					}
					if op == 3 {
						break
					}
					if err := c.Delete(); err != nil {
						t.Errorf("Delete(%s): %v", id, err)
					} else {
						mu.Lock()
						deleted[id]++
						mu.Unlock()
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	if n := cpErrs.Load(); n > 0 {
		t.Errorf("%d checkpoints failed", n)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	es, _ := s.List()
	left := map[string]State{}
	for _, e := range es {
		left[e.ID] = e.State
	}
	for id, body := range bodies {
		n := deleted[id]
		switch {
		case n > 1:
			t.Errorf("%s deleted %d times", id, n)
		case failed[id]:
			if left[id] != Failed {
				t.Errorf("%s: failed, but %v at the end", id, left[id])
			}
		case n == 0:
			t.Errorf("%s: never deleted nor failed (state %v)", id, left[id])
		case n == 1:
			if st, ok := left[id]; ok {
				t.Errorf("%s: deleted, still listed as %v", id, st)
			}
		}
		if failed[id] {
			if b, err := os.ReadFile(s.contentPath(id)); err != nil || string(b) != body {
				t.Errorf("%s: failed message's content %d bytes, %v", id, len(b), err)
			}
		}
	}
	if len(left) != len(failed) {
		t.Errorf("%d messages left, want the %d failed ones", len(left), len(failed))
	}
	for _, f := range files(t, dir) {
		if strings.HasPrefix(f, ".") && (strings.HasSuffix(f, ".content") || strings.HasSuffix(f, ".envelope")) {
			t.Errorf("write-out leftover %s", f)
		}
	}
	if m := s.hot.mem.Load(); m != 0 {
		t.Errorf("memory budget holds %d bytes after every message ended; want 0 (chunks leaked)", m)
	}
}

// TestReview13ReplayDeletedElsewhere: a store-only daemon journals a
// message with its files; within the second before the checkpoint,
// another process ("queue delete", or a forwarder run with --as-client)
// deletes it, and the daemon is killed. The replay under the same boot
// must not bring the message back from its record: its files are missing
// because someone removed them, not because it was served from memory.
func TestReview13ReplayDeletedElsewhere(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s) // no scheduler here: files, as before
	deleted := newMessage(t, s, "Subject: deleted by an administrator\r\n\r\n")
	delivered := newMessage(t, s, "Subject: delivered by another process\r\n\r\n")
	other, _ := Open(dir, nil)
	for _, id := range []string{deleted, delivered} {
		c, err := other.Claim(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	j.kill()
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{deleted, delivered} {
		if _, st, err := s2.Read(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s, removed by another process before the kill, came back as %v (%+v)", id, st, rep)
		}
	}
}

// TestReview13PowerLossWrittenOut: served messages that deliveries wrote
// out before the checkpoint (a filter's path, a failure, a retry) have
// files that were never synced; a power loss takes them. The replay under
// the next boot brings every acknowledged message back from its record,
// keeps a failure's synced envelope, and does not bring back the one
// delivered.
func TestReview13PowerLossWrittenOut(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	body := map[string]string{}
	msg := func(subject string) string {
		b := "Subject: " + subject + "\r\n\r\n" + strings.Repeat(subject, 500) + "\r\n"
		id := newMessage(t, s, b)
		body[id] = b
		return id
	}
	untouched, filtered, retried, failed, delivered := msg("untouched"), msg("filtered"), msg("retried"), msg("failed"), msg("delivered")
	claim := func(id string) *Claim {
		c, err := s.Claim(id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := claim(filtered)
	if b, err := os.ReadFile(mustPath(t, c.ContentPath)); err != nil || string(b) != body[filtered] {
		t.Fatalf("ContentPath: %d bytes, %v", len(b), err)
	}
	c.Unlock()
	c = claim(retried)
	c.Env.Attempts++
	if err := c.Move(Ready); err != nil {
		t.Fatal(err)
	}
	c = claim(failed)
	c.Env.Attempts++
	if err := c.Move(Failed); err != nil {
		t.Fatal(err)
	}
	if err := claim(delivered).Delete(); err != nil {
		t.Fatal(err)
	}
	j.kill()
	// The power loss: no written-out content was synced, nor the
	// filtered message's envelope; the fsynced envelopes of the others
	// survive.
	for id := range body {
		os.Remove(s.contentPath(id))
	}
	os.Remove(s.envelopePath(filtered, Ready))

	s2, _ := Open(dir, nil)
	s2.boot = "another boot"
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]State{untouched: Ready, filtered: Ready, retried: Ready, failed: Failed}
	for id, st := range want {
		env, got, err := s2.Read(id)
		b, _ := os.ReadFile(s2.contentPath(id))
		if err != nil || got != st || string(b) != body[id] {
			t.Errorf("%s: %v %v, %d bytes; want %v with its %d bytes (%+v)", id, got, err, len(b), st, len(body[id]), rep)
			continue
		}
		if id == retried || id == failed {
			if env.Attempts != 1 {
				t.Errorf("%s: %d attempts; want the synced envelope's 1", id, env.Attempts)
			}
		}
	}
	if _, _, err := s2.Read(delivered); !errors.Is(err, ErrNotFound) {
		t.Errorf("delivered %s came back: %v", delivered, err)
	}
	if len(rep.Quarantined) != 0 {
		t.Errorf("quarantined: %v", rep.Quarantined)
	}
}

// TestReview13UnlockWhenFilesFail: a delivery of a served message that
// cannot record its result (a full disk: writing the message out fails;
// a hidden directory in the way stands in for it) unlocks the claim, as
// the scheduler does after such an error. The message must be claimable
// again, and once there is room, written out as Ready, unlocked: not left
// claimed by a claim nobody holds, its content locked by the daemon until
// a restart.
func TestReview13UnlockWhenFilesFail(t *testing.T) {
	s, j, id, blocker := blockedServed(t)
	dir := s.dir
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	c.Env.Attempts++
	if err := c.Move(Ready); err == nil {
		t.Fatalf("Move with the files' way blocked: no error")
	}
	c.Unlock() // as the scheduler does when the result cannot be recorded
	c2, err := s.Claim(id)
	if err != nil {
		t.Fatalf("Claim after a failed Move and Unlock: %v; want the message claimable again", err)
	}
	c2.Unlock()
	os.Remove(blocker)
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.envelopePath(id, Ready)); err != nil {
		t.Errorf("after the checkpoint: %v; want a ready envelope (files %v)", err, files(t, dir))
	}
	other, _ := Open(dir, nil)
	c3, err := other.Claim(id)
	if err != nil {
		t.Fatalf("another process's Claim: %v; want the message free", err)
	}
	c3.Unlock()
}

// mustPath calls a path method that can fail (Claim.ContentPath) and
// fails the test if it does.
func mustPath(t *testing.T, f func() (string, error)) string {
	t.Helper()
	p, err := f()
	if err != nil {
		t.Errorf("%v", err)
	}
	return p
}

// TestContentPathWhenFilesFail: a served message whose content cannot be
// written out (a full disk; a hidden directory in the way stands in for
// it) gives the client filter, the notices and the enforcer an error, not
// the name of a file that is not there.
func TestContentPathWhenFilesFail(t *testing.T) {
	s, _, id, blocker := blockedServed(t)
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.ContentPath(); err == nil {
		t.Errorf("ContentPath with the files' way blocked = %q, nil; want an error", p)
	}
	c.Unlock()
	os.Remove(blocker)
	c, err = s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Unlock()
	if b, err := os.ReadFile(mustPath(t, c.ContentPath)); err != nil || string(b) != "Subject: the disk is full\r\n\r\n" {
		t.Errorf("ContentPath once there is room: %q, %v", b, err)
	}
}

// blockedServed is a spool with a journal serving one message whose
// content cannot be written out: a hidden directory stands in the way of
// its temporary file, as a full disk would. Removing blocker makes room.
func blockedServed(t *testing.T) (s *Spool, j *Journal, id, blocker string) {
	t.Helper()
	dir := t.TempDir()
	s, _ = Open(dir, nil)
	j = serve(t, s)
	id = newMessage(t, s, "Subject: the disk is full\r\n\r\n")
	blocker = filepath.Join(dir, "."+id+".content")
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	return s, j, id, blocker
}
