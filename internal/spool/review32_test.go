package spool

// Probes and regression tests from the hostile review of 31ab359, 0a7daf2,
// b33fc1e, d302b3b and 60646a0.

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

// tmpfsDir mounts a small tmpfs (root only) so that a full disk is real:
// writes fail with ENOSPC part way, as on the disk.
func tmpfsDir(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to mount a tmpfs")
	}
	d := t.TempDir()
	if err := syscall.Mount("tmpfs", d, "tmpfs", 0, "size="+size); err != nil {
		skipOrFail(t, "mount tmpfs: "+err.Error())
	}
	t.Cleanup(func() { syscall.Unmount(d, syscall.MNT_DETACH) })
	return d
}

// tmpfsSpool opens a spool in a "spool" directory on a new tmpfs of size.
func tmpfsSpool(t *testing.T, size string) (mnt, dir string, s *Spool) {
	t.Helper()
	mnt = tmpfsDir(t, size)
	dir = filepath.Join(mnt, "spool")
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mnt, dir, s
}

// fillDisk writes a file in dir until the file system is full, leaving
// about leave bytes; removing the returned path makes room again.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("filler-%d", time.Now().UnixNano()))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Statfs_t
	syscall.Statfs(dir, &st)
	free := int64(st.Bavail) * st.Bsize
	if n := free - leave; n > 0 {
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(int64(len(buf)), n)
			m, err := f.Write(buf[:k])
			n -= int64(m)
			if err != nil {
				break
			}
		}
	}
	if leave == 0 {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
	return p
}

// TestReview32UnlockAfterFailedMoveFullDisk: the scheduler's answer to a
// result it cannot record (attempt: "c.Unlock()", and 60646a0's double
// bounce, which logs "it stays queued"). On a full disk Move fails writing
// the envelope, and Unlock's Move(Ready) fails the same way: the claim
// keeps its content lock and the envelope stays Claimed. Nothing in the
// running process will claim it again (not Ready; another worker gets
// ErrBusy) until a restart.
func TestReview32UnlockAfterFailedMoveFullDisk(t *testing.T) {
	mnt, dir, s := tmpfsSpool(t, "1m")
	id := newMessage(t, s, "Subject: full\r\n\r\nbody\r\n")
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	filler := fillDisk(t, mnt, 0)
	c.Env.Attempts++
	if err := c.Move(Failed); err == nil {
		t.Fatal("setup: Move on a full disk succeeded")
	}
	uerr := c.Unlock() // as attempt() does after doubleBounce's error
	os.Remove(filler)
	st, err := s.find(id)
	if err != nil || st != Ready {
		t.Errorf("after a failed Move and Unlock (Unlock = %v): state %v, %v; want Ready (\"it stays queued\")", uerr, st, err)
	}
	other, _ := Open(dir, nil)
	if c2, err := other.Lock(id); err != nil {
		t.Errorf("another worker's Lock after Unlock: %v; want the content lock released", err)
	} else {
		c2.Unlock()
	}
}

// TestReview32MoveRenamedThenUnlock: Move renames the envelope to its new
// state and then fails (the directory fsync: an I/O error); Unlock, as the
// scheduler calls it, still believes the envelope is Claimed, writes a new
// Claimed envelope and renames it Ready. The message now has two envelopes
// (Failed and Ready), which Recover quarantines ("several envelope files":
// "cannot come from relaykeeper's own renames").
func TestReview32MoveRenamedThenUnlock(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	s.failDirSync = errors.New("injected: directory fsync failed (EIO)")
	if err := c.Move(Failed); err == nil {
		t.Fatal("setup: Move succeeded")
	}
	c.Unlock()
	s.failDirSync = nil
	c.lock.Close() // as a restart would (the failed Unlock keeps it open)
	if sts := s.states(id); len(sts) != 1 {
		t.Errorf("envelopes after a Move that failed after its rename, then Unlock: %v; want one", sts)
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined) != 0 {
		t.Errorf("Recover quarantined %v: the message will never be delivered", rep.Quarantined)
	}
}

// TestReview32UnlockLeaksServedSlot: a served message past the memory
// budget (a file-mode slot, reading its journal segment) is claimed, the
// checkpoint writes it out while claimed (the claim keeps the content), and
// then the result cannot be recorded (a full disk). The claim never ends:
// its chunks are never released, so the slot (hotMaxFiles) and the
// segment's descriptor are gone for the life of the process.
func TestReview32UnlockLeaksServedSlot(t *testing.T) {
	mnt, _, s := tmpfsSpool(t, "8m")
	j := serve(t, s)
	id := newMessage(t, s, "Subject: big\r\n\r\n"+strings.Repeat("b", 300<<10))
	if n := s.hot.files.Load(); n != 1 {
		t.Fatalf("setup: file-mode slots %d; want 1", n)
	}
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.checkpoint(); err != nil { // written out while claimed
		t.Fatal(err)
	}
	filler := fillDisk(t, mnt, 0)
	c.Env.Attempts++
	if err := c.Move(Ready); err == nil {
		t.Fatal("setup: Move on a full disk succeeded")
	}
	c.Unlock()
	os.Remove(filler)
	if n := s.hot.files.Load(); n != 0 {
		t.Errorf("file-mode slots after the claim was unlocked: %d; want 0 (leaked for good)", n)
	}
}

// TestReview32WaitRoomTwoWaiters: two writers wait for a scratch slot, two
// slots come free at once. room holds one token, so the second roomMade
// finds it full and is dropped: one writer waits its whole deadline while
// a slot is free.
func TestReview32ProbeWaitRoomTwoWaiters(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	s.hot.files.Add(hotMaxFiles)
	deadline := time.Now().Add(800 * time.Millisecond)
	var wg sync.WaitGroup
	took := make([]time.Duration, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			s.hot.waitRoom(deadline)
			took[i] = time.Since(start)
		}()
	}
	for s.hot.waiting.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	s.hot.files.Add(-1)
	s.hot.roomMade()
	s.hot.files.Add(-1)
	s.hot.roomMade()
	wg.Wait()
	for i, d := range took {
		if d > 400*time.Millisecond {
			t.Errorf("waiter %d woke after %v with two slots freed at once; want at once", i, d.Round(time.Millisecond))
		}
	}
}

// TestReview32ProbeFullDiskJournal (probe): concurrent served commits,
// small and past the memory budget, on a tmpfs that fills up and empties
// again. Every Commit that returned nil must replay with its content, the
// active segment must always be j.size long, and nothing is torn.
func TestReview32ProbeFullDiskJournal(t *testing.T) {
	mnt, dir, s := tmpfsSpool(t, "6m")
	j := serve(t, s)
	var enospc, partial int
	faultAppend = func(f *os.File, b []byte, off int64) (int, error) {
		n, err := f.WriteAt(b, off)
		if errors.Is(err, syscall.ENOSPC) {
			enospc++ // under j.mu
			if n > 0 {
				partial++
			}
		}
		return n, err
	}
	defer func() { faultAppend = nil }()
	stop := make(chan struct{})
	cpDone := make(chan struct{})
	go func() { // checkpoints as Run makes them, rotating under the commits
		defer close(cpDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			j.checkpoint()
		}
	}()
	var mu sync.Mutex
	ok := map[string]string{}
	how := map[string]string{}
	fails := 0
	filler := ""
	for round := range 6 {
		if round%2 == 0 {
			filler = fillDisk(t, mnt, 700<<10)
		}
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewSource(int64(round*100 + g)))
				for k := range 5 {
					size := []int{900, 20 << 10, 200 << 10, 600 << 10}[r.Intn(4)]
					body := fmt.Sprintf("Subject: %d.%d.%d\r\n\r\n", round, g, k) + strings.Repeat(string(rune('a'+g)), size)
					w, err := s.Create(t0)
					if err != nil {
						continue
					}
					if _, err := io.WriteString(w, body); err != nil {
						w.Abort()
						mu.Lock()
						fails++
						mu.Unlock()
						continue
					}
					if err := w.Prepare(testEnvelope()); err != nil {
						w.Abort()
						continue
					}
					if err := w.Commit(false); err != nil {
						w.Abort()
						mu.Lock()
						fails++
						mu.Unlock()
						continue
					}
					served := s.served(w.ID()) != nil
					_, ferr := os.Stat(s.contentPath(w.ID()))
					mu.Lock()
					ok[w.ID()] = body
					how[w.ID()] = fmt.Sprintf("round %d served=%v files=%v", round, served, ferr == nil)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		j.mu.Lock()
		if !j.closed {
			fi, err := j.f.Stat()
			if err != nil || fi.Size() != j.size {
				t.Errorf("round %d: segment is %v bytes, j.size %d", round, fi.Size(), j.size)
			}
		}
		j.mu.Unlock()
		if round%2 == 1 {
			os.Remove(filler)
		}
	}
	os.Remove(filler)
	close(stop)
	<-cpDone
	nserved, nfiles := 0, 0
	for id := range ok {
		if s.served(id) != nil {
			nserved++
		} else if _, err := os.Stat(s.contentPath(id)); err == nil {
			nfiles++
		}
	}
	t.Logf("before kill: %d served, %d with files", nserved, nfiles)
	for id := range ok {
		st, err := s.find(id)
		_, ferr := os.Stat(s.contentPath(id))
		if err != nil || ferr != nil && s.served(id) == nil {
			t.Logf("before kill: %s (%s): state %v, %v; content file: %v; served %v", id, how[id], st, err, ferr, s.served(id) != nil)
		}
	}
	t.Logf("journal appends refused: %d (%d part-written)", enospc, partial)
	t.Logf("%d accepted, %d refused; journal open: %v, hot files %d", len(ok), fails, s.journal.Load() == j, s.hot.files.Load())
	j.kill()
	for _, o := range j.old { // the process dies: every segment's lock goes
		o.f.Close()
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rep.TornTails != 0 || len(rep.CorruptJournals) != 0 {
		t.Errorf("replay: %+v", rep)
	}
	t.Logf("replay: %+v", rep)
	if q, _ := os.ReadDir(filepath.Join(dir, quarantineDir)); len(q) > 0 {
		t.Logf("quarantine: %d files, e.g. %s", len(q), q[0].Name())
	}
	for id, body := range ok {
		b, err := os.ReadFile(s2.contentPath(id))
		if err != nil || string(b) != body {
			t.Errorf("%s", how[id])
			t.Errorf("%s accepted: content after replay %d bytes, %v; want %d", id, len(b), err, len(body))
		}
	}
}

// TestReview32OldSegmentsGrow: a served message that cannot be written out
// (a full disk; blockedServed's hidden directory stands in) makes every
// checkpoint fail after it has rotated: Run retries once a second, and
// each try opens a new segment and keeps the old one open and locked in
// j.old, with nothing new in it. An hour of a full disk is 3,600 segments
// and descriptors.
func TestReview32OldSegmentsGrow(t *testing.T) {
	s, j, _, _ := blockedServed(t)
	for range 20 {
		j.checkpoint() // Run's retries, one a second
	}
	if n := len(j.old); n > 2 {
		t.Errorf("after 20 failed checkpoints with nothing new journalled: %d old segments held open; want them not to grow", n)
	}
	if segs := s.segments(); len(segs) > 3 {
		t.Errorf("%d segment files", len(segs))
	}
}

// TestReview32RelockAfterFailedFiles: the server runs its filter on
// w.ContentPath() (whose error is dropped), then calls w.Relock() and, if
// that succeeds, acts on the filter's outcome. On a full disk the content
// file is created but its content cannot be written: fileErr is set and
// Commit would refuse, but a filter that abandons the message (E-MailRelay
// exit 100, copy:) is never followed by Commit: the client hears 250 for a
// message the filter was handed empty. Relock must report the failure.
func TestReview32RelockAfterFailedFiles(t *testing.T) {
	mnt, _, s := tmpfsSpool(t, "1m")
	serve(t, s)
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	io.WriteString(w, "Subject: full\r\n\r\n"+strings.Repeat("m", 60<<10))
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	filler := fillDisk(t, mnt, 0)
	defer os.Remove(filler)
	p := w.ContentPath() // as session.Data does, for the filter
	w.EnvelopePath()
	fi, _ := os.Stat(p)
	if w.fileErr == nil {
		t.Fatalf("setup: the files were written on a full disk")
	}
	t.Logf("filter is handed %s: %v bytes; fileErr %v", filepath.Base(p), fi.Size(), w.fileErr)
	if err := w.Relock(); err == nil {
		t.Errorf("Relock after the files could not be written = nil; the server then carries out an Abandon (250) for a message the filter saw %d bytes of", fi.Size())
	}
}

func openFDs(t *testing.T) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(des)
}

// TestReview32ProbeWriterExits (probe): every way out of a Writer, for a
// message in memory and one in a scratch file, gives back its slot, its
// memory and its descriptors (scratch files idle in the pool excepted).
func TestReview32ProbeWriterExits(t *testing.T) {
	bodies := map[string]string{"mem": "Subject: m\r\n\r\n" + strings.Repeat("m", 30<<10),
		"scratch": "Subject: s\r\n\r\n" + strings.Repeat("s", 300<<10)}
	type step func(t *testing.T, s *Spool, j *Journal, w *Writer)
	prep := func(t *testing.T, s *Spool, j *Journal, w *Writer) {
		if err := w.Prepare(testEnvelope()); err != nil {
			t.Fatal(err)
		}
	}
	exits := map[string][]step{
		"abort":             {},
		"prepare+abort":     {prep},
		"contentpath+abort": {prep, func(_ *testing.T, _ *Spool, _ *Journal, w *Writer) { w.ContentPath(); w.Relock() }},
		"journal closed+fail": {prep, func(_ *testing.T, s *Spool, j *Journal, w *Writer) {
			s.failDirSync = errors.New("x")
			j.close()
			w.Commit(false)
			s.failDirSync = nil
		}},
		"slow+abort": {func(_ *testing.T, _ *Spool, _ *Journal, w *Writer) {
			w.started = w.started.Add(-2 * servedIntake)
			w.Write([]byte("more\r\n"))
		}, prep},
	}
	for kind, body := range bodies {
		for name, steps := range exits {
			t.Run(kind+"/"+name, func(t *testing.T) {
				dir := t.TempDir()
				s, _ := Open(dir, nil)
				j := serve(t, s)
				before := openFDs(t)
				w, err := s.Create(t0)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(w, body)
				for _, st := range steps {
					st(t, s, j, w)
				}
				w.Abort()
				idle := len(s.hot.scratch.idle)
				if n := s.hot.files.Load(); n != 0 {
					t.Errorf("file slots %d", n)
				}
				if m := s.hot.mem.Load(); m != 0 {
					t.Errorf("memory %d", m)
				}
				if after := openFDs(t); after-idle > before {
					t.Errorf("descriptors %d -> %d (%d idle scratch)", before, after, idle)
				}
				if got := files(t, dir); len(got) != 0 && name != "journal closed+fail" {
					t.Errorf("files left: %v", got)
				}
			})
		}
	}
}

// skipOrFail skips a test that lacks what the machine must provide, or
// fails it under CI, where everything must be there.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
