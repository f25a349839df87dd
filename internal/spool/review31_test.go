package spool

// Regression tests from the hostile review of 31ab359 (scratch files and
// messages served from their journal records).

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scratchWriter returns a Writer whose content (body) is in a scratch
// file, with some bytes still in its unflushed tail.
func scratchWriter(t *testing.T, s *Spool, body string) *Writer {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	if w.mem == nil || w.mem.f == nil || !w.mem.isScratch || w.mem.tailN == 0 {
		t.Fatalf("setup: want the content in a scratch file with an unflushed tail")
	}
	return w
}

// TestReview31CommitTailWriteFails: the scratch file takes the first
// chunks, then refuses the tail's write at Commit (ENOSPC for a moment,
// EIO; here EBADF from a read-only descriptor). flush drops the tail but
// keeps counting it, commitServed fails, Commit falls back to the files,
// and spill copies the short scratch file without noticing: the client
// hears 250 for a message missing its tail.
func TestReview31CommitTailWriteFails(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	body := strings.Repeat("a", hotMaxContent+1) + strings.Repeat("T", 100)
	w := scratchWriter(t, s, body)
	flushed := make([]byte, w.mem.n-w.mem.tailN)
	if _, err := w.mem.f.ReadAt(flushed, 0); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "scratch")
	os.WriteFile(cp, flushed, 0o600)
	ro, err := os.Open(cp) // reads work, writes fail
	if err != nil {
		t.Fatal(err)
	}
	w.mem.f.Close()
	w.mem.f = ro
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Logf("Commit = %v (a 4xx: acceptable)", err)
		return
	}
	c, err := s.Claim(w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got := readContent(t, c); got != body {
		t.Errorf("Commit said 250, but the message has %d bytes of content; %d were received (tail lost)", len(got), len(body))
	}
}

// TestReview31SpillFailureAbort: a filter asks for the content path of a
// message in a scratch file, and the copy to the content file fails (the
// scratch file cannot be read back). The session aborts; the content file
// spill created stays on disk, and its descriptor (holding the lock) leaks.
func TestReview31SpillFailureAbort(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	w := scratchWriter(t, s, strings.Repeat("a", hotMaxContent+1)+"tail")
	wo, err := os.OpenFile(filepath.Join(t.TempDir(), "scratch"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w.mem.f.Close()
	w.mem.f = wo // writes work, reads fail
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	w.ContentPath()
	if err := w.Commit(false); err == nil {
		t.Fatal("Commit succeeded with unreadable content")
	}
	w.Abort()
	noFiles(t, dir, "after Abort of a message whose spill failed")
	if w.f != nil {
		if _, err := w.f.Stat(); err == nil {
			t.Errorf("Abort left the content file's descriptor (and its lock) open")
		}
	}
}

// TestReview31InFlowWaitThenFiles: a message crosses 128 KiB 800 ms into
// its transfer and finds every scratch slot taken. It waits only for what
// is left of servedIntake (a message older than that takes its files at
// Commit anyway), not a whole inFlowDelay, and then takes its files. (The
// review found it waiting a whole inFlowDelay, taking a slot, and being
// written to its files all the same.)
func TestReview31InFlowWaitThenFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	s.hot.files.Add(hotMaxFiles)
	defer s.hot.files.Add(-hotMaxFiles)
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	// The first 128 KiB took 800 ms: 200 ms of servedIntake are left,
	// far enough from a whole inFlowDelay (a second) that a loaded
	// machine's delays (400 ms seen) do not blur the two.
	w.started = w.started.Add(-800 * time.Millisecond)
	start := time.Now()
	io.WriteString(w, strings.Repeat("w", hotMaxContent+1))
	waited := time.Since(start)
	if waited >= inFlowDelay-200*time.Millisecond || waited < 100*time.Millisecond {
		t.Errorf("waited %v for a scratch slot; want what was left of servedIntake, about 200 ms", waited)
	}
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.contentPath(w.ID())); err != nil {
		t.Errorf("message that found no slot has no files: %v", err)
	}
}

// TestReview31SlowWriterHoldsSlot: a message trickling in keeps its
// scratch slot for as long as its transfer lasts, although once it is
// older than servedIntake Commit will write it to its files anyway. 128
// slow clients thus hold every slot (and the in-flow wait then costs every
// other message past the memory budget a second) for as long as they like.
func TestReview31SlowWriterHoldsSlot(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	io.WriteString(w, strings.Repeat("s", hotMaxContent+1))
	if w.mem == nil || w.mem.f == nil {
		t.Fatal("setup: no scratch file")
	}
	w.started = w.started.Add(-servedIntake - time.Second) // as if it had trickled in for 2 s
	io.WriteString(w, "more\r\n")
	if n := s.hot.files.Load(); n != 0 {
		t.Errorf("a writer past servedIntake (bound for files at Commit) still holds %d scratch slot(s)", n)
	}
}

// TestReview31InFlowLostWakeup steps through Writer.toScratch's calls: the
// writer finds every slot taken; a slot comes free before the writer has
// counted itself in waiting, so roomMade sends nothing; the writer then
// waits its whole deadline for a slot that is already free, and (waitRoom
// does not look again at the deadline) takes files.
func TestReview31InFlowLostWakeup(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	s.hot.files.Add(hotMaxFiles)
	defer s.hot.files.Add(-hotMaxFiles + 1)
	c := &chunks{t: &s.hot}
	defer c.release()
	if err := c.toScratch(dir); !errors.Is(err, errNoScratch) {
		t.Fatalf("toScratch = %v; want errNoScratch", err)
	}
	s.hot.files.Add(-1) // a delivered message lets go of its slot...
	s.hot.roomMade()    // ...while nobody is counted as waiting
	start := time.Now()
	// The deadline is long and the bound half of it, so that a loaded
	// machine's scheduling delay is never taken for the whole wait.
	woke := s.hot.waitRoom(start.Add(5 * time.Second))
	if !woke || time.Since(start) > 2500*time.Millisecond {
		t.Errorf("waitRoom = %v after %v with a slot free all along; want true at once",
			woke, time.Since(start).Round(time.Millisecond))
	}
}

// Probe (passes): content served from the segment equals what was written,
// for sizes around chunk boundaries, odd write sizes, memory-then-scratch
// and concurrent appends of other records; and after write-out.
func TestReview31ProbeOffsets(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	sizes := []int{hotMaxContent + 1, hotMaxContent + hotChunk, hotMaxContent + hotChunk - 1, 2 * hotMaxContent, journalMaxContent, journalMaxContent - 1, 3*hotChunk + 7}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := map[string][]byte{}
	for gi, n := range sizes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(gi)))
			for k := range 3 {
				body := make([]byte, n)
				rng.Read(body)
				w, err := s.Create(t0)
				if err != nil {
					t.Error(err)
					return
				}
				for p := body; len(p) > 0; {
					m := min(len(p), 1+rng.Intn(20000))
					if _, err := w.Write(p[:m]); err != nil {
						t.Error(err)
						return
					}
					p = p[m:]
				}
				env := testEnvelope()
				env.From = fmt.Sprintf("x%d-%d@%s", gi, k, strings.Repeat("a", rng.Intn(300))) // a length that varies; an address has no NUL
				if err := w.Prepare(env); err != nil {
					t.Error(err)
					return
				}
				if err := w.Commit(false); err != nil {
					t.Error(err)
					return
				}
				j.done(fmt.Sprintf("%016X", rng.Uint64())) // other records in between
				mu.Lock()
				bodies[w.ID()] = body
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id, body := range bodies {
		r, err := s.OpenContent(id)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(body)+1)
		n, _ := r.Read(b)
		_ = n
		c, err := s.Claim(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > hotMaxContent && (c.hot == nil || c.hot.content.f == nil || c.hot.content.isScratch) {
			t.Errorf("%s (%d bytes): not served from its segment", id, len(body))
		}
		if got := readContent(t, c); got != string(body) {
			t.Errorf("%s (%d bytes): served content differs", id, len(body))
		}
		c.Unlock()
	}
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	for id, body := range bodies {
		b, err := os.ReadFile(s.contentPath(id))
		if err != nil || string(b) != string(body) {
			t.Errorf("%s written out: %d bytes, %v", id, len(b), err)
		}
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if s.hot.files.Load() != 0 || s.hot.mem.Load() != 0 {
		t.Errorf("after close: %d files, %d mem", s.hot.files.Load(), s.hot.mem.Load())
	}
}

// Probe (passes): file-mode messages under concurrent checkpoints, claims,
// OpenContent, write-outs and deliveries, with few slots.
func TestReview31ProbeConcurrentFileMode(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	s.hot.files.Add(hotMaxFiles - 6) // 6 slots: waits and fallbacks too
	defer s.hot.files.Add(-(hotMaxFiles - 6))
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := j.checkpoint(); err != nil {
				t.Error(err)
			}
		}
	}()
	ids := make(chan string, 100)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case id := <-ids:
				if r, err := s.OpenContent(id); err == nil {
					io.Copy(io.Discard, r)
					r.Close()
				}
				s.ContentSize(id)
				s.Read(id)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				body := "Subject: x\r\n\r\n" + strings.Repeat(string(rune('a'+g)), hotMaxContent+i*1000)
				id := newMessage(t, s, body)
				select {
				case ids <- id:
				default:
				}
				c, err := s.Claim(id)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if got := readContent(t, c); got != body {
					t.Errorf("%s differs", id)
				}
				switch i % 3 {
				case 0:
					c.Unlock()
				case 1:
					c.Delivered()
				default:
					c.Delete()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	s.WaitRemovals()
	if n := s.hot.files.Load(); n != hotMaxFiles-6 {
		t.Errorf("files = %d; want %d", n, hotMaxFiles-6)
	}
	es, _ := s.List()
	if len(es) != 6*5 {
		t.Errorf("%d left; want 30", len(es))
	}
}

// TestReview31FilterAfterFailedSpill: a filter asks for the paths of a
// message in a scratch file, and writing its content file fails part way
// (a full disk; here RLIMIT_FSIZE). spill leaves the partial content file
// and w.f behind but w.mem set; the filter runs on the partial file; Relock
// is happy with w.f; and Commit serves the message from the journal as
// received, as though no filter had seen it. The orphan content file then
// keeps the checkpoint from writing the message out (link: file exists),
// so its segment is never retired.
func TestReview31FilterAfterFailedSpill(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	body := strings.Repeat("f", 38*hotChunk) // no tail: the scratch file is whole
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old)
	lim := old
	lim.Cur = 100 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	cp, ep := w.ContentPath(), w.EnvelopePath()
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	// The filter: edits the content it was given.
	os.WriteFile(cp, []byte("Subject: filtered\r\n\r\n"), 0o640)
	_ = ep
	if err := w.Relock(); err != nil {
		t.Logf("Relock = %v (a 4xx: fine)", err)
		w.Abort()
		return
	}
	if err := w.Commit(false); err != nil {
		t.Logf("Commit = %v (a 4xx: fine)", err)
		w.Abort()
		return
	}
	c, err := s.Claim(w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if c.hot != nil {
		t.Errorf("Commit said 250 and serves the message from the journal, as received, although a filter was given (partial) files and edited them")
	}
	c.Unlock()
	if err := j.checkpoint(); err != nil {
		t.Errorf("checkpoint: %v (the orphan content file blocks the write-out; the segment stays)", err)
	}
}
