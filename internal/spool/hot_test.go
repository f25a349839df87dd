package spool

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// serve makes s serve messages from the journal: that takes a Watcher, a
// scheduler in the process to claim them.
func serve(t *testing.T, s *Spool) *Journal {
	t.Helper()
	s.Watch(nopWatcher{})
	return openJournal(t, s)
}

type nopWatcher struct{}

func (nopWatcher) Committed(string, []byte) {}

func readContent(t *testing.T, c *Claim) string {
	t.Helper()
	r, n, err := c.Content()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if int64(len(b)) != n {
		t.Errorf("Content: %d bytes read, size said %d", len(b), n)
	}
	return string(b)
}

// TestServedLifecycle: with the journal open, a small message is accepted,
// listed, claimed, read and deleted without a file ever being made.
func TestServedLifecycle(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testServedLifecycle(t, 20000) }) // more than one chunk
	// Larger than memory takes: a scratch file, then the journal record.
	t.Run("journal", func(t *testing.T) { testServedLifecycle(t, 300<<10) })
}

func testServedLifecycle(t *testing.T, size int) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	body := "Subject: served\r\n\r\n" + strings.Repeat("x", size) + "\r\n"
	id := newMessage(t, s, body)
	if !noFiles(t, dir, "after commit (served from the journal)") {
		t.FailNow()
	}
	if es, _ := s.List(); !cmp.Equal(es, []Entry{{id, Ready}}) {
		t.Errorf("List = %v; want %s ready", es, id)
	}
	if env, st, err := s.Read(id); err != nil || st != Ready || env.From != "alice@example.com" || env.ID != id {
		t.Errorf("Read = %+v, %v, %v", env, st, err)
	}
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(id); !errors.Is(err, ErrBusy) {
		t.Errorf("second Claim = %v; want ErrBusy", err)
	}
	if es, _ := s.List(); !cmp.Equal(es, []Entry{{id, Claimed}}) {
		t.Errorf("List while claimed = %v", es)
	}
	if got := readContent(t, c); got != body {
		t.Errorf("content differs: %d bytes, want %d", len(got), len(body))
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read after Delete = %v; want ErrNotFound", err)
	}
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	noFiles(t, dir, "after a checkpoint (delivered before it)")
}

// TestServedWrittenOut: a checkpoint writes out what is still served, as
// E-MailRelay's files; a claimed message keeps its claim (busy, locked)
// and its reader, and ends through the files.
func TestServedWrittenOut(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	idle := newMessage(t, s, "Subject: idle\r\n\r\n")
	busy := newMessage(t, s, "Subject: busy\r\n\r\n")
	// One read from its journal record: the segment goes at the
	// checkpoint, and the claim reads on.
	bigBody := "Subject: big\r\n\r\n" + strings.Repeat("y", 200<<10)
	big := newMessage(t, s, bigBody)
	c, err := s.Claim(busy)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := s.Claim(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := []string{busy + ".content", busy + ".envelope.busy", idle + ".content", idle + ".envelope",
		big + ".content", big + ".envelope.busy"}
	sort.Strings(want)
	if got := files(t, dir); !cmp.Equal(got, want) {
		t.Errorf("files after checkpoint = %v; want %v", got, want)
	}
	if segs := s.segments(); len(segs) != 1 {
		t.Errorf("segments after checkpoint: %v; want the new one only", segs)
	}
	if _, err := s.lockContent(busy); !errors.Is(err, ErrBusy) {
		t.Errorf("written-out claimed message not locked: %v", err)
	}
	if got := readContent(t, c); got != "Subject: busy\r\n\r\n" {
		t.Errorf("claim reads %q after write-out", got)
	}
	if got := readContent(t, cb); got != bigBody {
		t.Errorf("claim of a message read from the journal reads %d bytes after write-out; want %d", len(got), len(bigBody))
	}
	if b, _ := os.ReadFile(s.contentPath(big)); string(b) != bigBody {
		t.Errorf("written-out content file: %d bytes; want %d", len(b), len(bigBody))
	}
	if err := cb.Move(Ready); err != nil {
		t.Fatal(err)
	}
	c.Env.Recipients[0].Status = Sent
	if err := c.Move(Ready); err != nil {
		t.Fatal(err)
	}
	env, st, err := s.Read(busy)
	if err != nil || st != Ready || env.Recipients[0].Status != Sent {
		t.Errorf("after Move: %v %v %+v", st, err, env)
	}
	for _, id := range []string{idle, busy, big} {
		c, err := s.Claim(id)
		if err != nil {
			t.Fatalf("Claim(%s) from files: %v", id, err)
		}
		if err := c.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	noFiles(t, dir, "left")
}

// TestServedChanges: a change of a served message's envelope (a deferral,
// a hold) writes its files first and then goes the classic way, durable.
func TestServedChanges(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	id := newMessage(t, s, "Subject: deferred\r\n\r\n")
	c, _ := s.Claim(id)
	c.Env.Recipients[1].Status = Sent
	if err := c.Move(Held); err != nil {
		t.Fatal(err)
	}
	want := []string{id + ".content", id + ".envelope.held"}
	if got := files(t, dir); !cmp.Equal(got, want) {
		t.Errorf("files = %v; want %v", got, want)
	}
	if b, _ := os.ReadFile(s.contentPath(id)); string(b) != "Subject: deferred\r\n\r\n" {
		t.Errorf("content file %q", b)
	}
	// An administrator's Lock of a served message, then Unlock.
	id2 := newMessage(t, s, "Subject: locked\r\n\r\n")
	l, err := s.Lock(id2)
	if err != nil {
		t.Fatal(err)
	}
	if p := l.EnvelopePath(); !strings.HasSuffix(p, id2+".envelope") {
		t.Errorf("EnvelopePath = %s", p)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, st, err := s.Read(id2); err != nil || st != Ready {
		t.Errorf("after Lock, Unlock: %v, %v", st, err)
	}
	// An unchanged claim ends in memory; one that changed the envelope
	// keeps the change, as it does for a message in files.
	id3 := newMessage(t, s, "Subject: unlocked\r\n\r\n")
	c, _ = s.Claim(id3)
	c.Unlock()
	if _, err := os.Stat(s.contentPath(id3)); err == nil {
		t.Errorf("an unchanged Unlock wrote files")
	}
	c, _ = s.Claim(id3)
	c.Env.Attempts = 7
	if err := c.Unlock(); err != nil {
		t.Fatal(err)
	}
	if env, st, err := s.Read(id3); err != nil || st != Ready || env.Attempts != 7 {
		t.Errorf("after a changed Unlock: %v, %v, attempts %d; want ready, 7", st, err, env.Attempts)
	}
}

// TestServedKilled: a process killed while it serves messages from memory
// leaves only the journal; the next start writes them out from it, as they
// were accepted, and the ones delivered stay gone.
func TestServedKilled(t *testing.T) {
	for _, boot := range []string{"", "another boot"} {
		dir := t.TempDir()
		s, _ := Open(dir, nil)
		j := serve(t, s)
		want := map[string]string{}
		// The last from a scratch file: larger than memory takes.
		for _, b := range []string{"one", "two", strings.Repeat("three", 9000), strings.Repeat("four", 60000)} {
			body := "Subject: " + b + "\r\n\r\n"
			want[newMessage(t, s, body)] = body
		}
		gone := newMessage(t, s, "Subject: delivered\r\n\r\n")
		c, _ := s.Claim(gone)
		c.Delete()
		j.kill()
		if !noFiles(t, dir, "before the restart") {
			t.FailNow()
		}
		s2, _ := Open(dir, nil)
		if boot != "" {
			s2.boot = boot
		}
		rep, err := s2.Recover()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Ready != 4 || len(rep.Restored) != 4 || len(rep.Quarantined) != 0 {
			t.Errorf("boot %q: Recover = %+v; want 4 restored and ready", boot, rep)
		}
		for id, body := range want {
			env, st, err := s2.Read(id)
			got, _ := os.ReadFile(s2.contentPath(id))
			if err != nil || st != Ready || string(got) != body || env.From != "alice@example.com" {
				t.Errorf("%s: %v %v, %d bytes; want ready with %d bytes", id, st, err, len(got), len(body))
			}
		}
		if _, _, err := s2.Read(gone); !errors.Is(err, ErrNotFound) {
			t.Errorf("delivered %s came back: %v", gone, err)
		}
	}
}

// TestServedLimits: a message larger than hotMaxContent, or one past
// hotBudget, is received into a scratch file and served from its journal
// record, taking no memory; one larger than journalMaxContent is written
// to its file as it arrives; a filter's paths write the files at once;
// closing the journal writes out the rest.
func TestServedLimits(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	bigBody := strings.Repeat("b", hotMaxContent+1)
	big := newMessage(t, s, bigBody)
	if _, err := os.Stat(s.contentPath(big)); err == nil {
		t.Errorf("message larger than memory takes has a content file; want it served from the journal")
	}
	if n := s.hot.mem.Load(); n != 0 {
		t.Errorf("message served from the journal holds %d bytes of memory", n)
	}
	s.hot.files.Add(hotMaxFiles) // as many as may be open
	full := newMessage(t, s, bigBody)
	s.hot.files.Add(-hotMaxFiles)
	if _, err := os.Stat(s.contentPath(full)); err != nil {
		t.Errorf("message past hotMaxFiles has no content file: %v", err)
	}
	huge := newMessage(t, s, strings.Repeat("h", journalMaxContent+1))
	if _, err := os.Stat(s.contentPath(huge)); err != nil {
		t.Errorf("message larger than the journal takes has no content file: %v", err)
	}
	w, _ := s.Create(t0)
	io.WriteString(w, "Subject: filtered\r\n\r\n")
	w.Prepare(testEnvelope())
	if _, err := os.Stat(w.ContentPath()); err != nil {
		t.Errorf("filter's content path: %v", err)
	}
	if _, err := os.Stat(w.EnvelopePath()); err != nil {
		t.Errorf("filter's envelope path: %v", err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.envelopePath(w.ID(), Ready)); err != nil {
		t.Errorf("filtered message not committed in files: %v", err)
	}
	// Fill the budget with served messages, then one more.
	var ids []string
	body := strings.Repeat("m", hotChunk*4-100)
	for range hotBudget / (hotChunk * 4) {
		ids = append(ids, newMessage(t, s, body))
	}
	mem := s.hot.mem.Load()
	over := newMessage(t, s, body)
	if _, err := os.Stat(s.contentPath(ids[0])); err == nil {
		t.Errorf("message within the budget has files")
	}
	if _, err := os.Stat(s.contentPath(over)); err == nil {
		t.Errorf("message over the budget has files; want it served from the journal")
	}
	if n := s.hot.mem.Load(); n != mem || n > hotBudget {
		t.Errorf("message over the budget took memory: %d bytes held, %d before", n, mem)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.contentPath(big)); err != nil || string(b) != bigBody {
		t.Errorf("%s after close: %d bytes, %v", big, len(b), err)
	}
	for _, id := range append(ids, over) {
		if b, err := os.ReadFile(s.contentPath(id)); err != nil || string(b) != body {
			t.Fatalf("%s after close: %v", id, err)
		}
	}
	if s.serving() || s.hot.mem.Load() != 0 || s.hot.files.Load() != 0 {
		t.Errorf("after close: serving %v, %d bytes held, %d files open; want none", s.serving(), s.hot.mem.Load(), s.hot.files.Load())
	}
}

// TestServedConcurrent: concurrent acceptances, claims, deletions and
// checkpoints (run with -race) lose nothing and leave nothing behind.
func TestServedConcurrent(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var cpErr error
	go func() {
		defer close(stop)
		for range 20 {
			if err := j.checkpoint(); err != nil {
				cpErr = err
			}
		}
	}()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := "Subject: " + strings.Repeat("c", g*100+i) + "\r\n\r\n"
				id := newMessage(t, s, body)
				c, err := s.Claim(id)
				if err != nil {
					t.Errorf("Claim(%s): %v", id, err)
					return
				}
				if got := readContent(t, c); got != body {
					t.Errorf("%s: content differs", id)
				}
				if i%5 == 0 {
					c.Unlock()
					continue
				}
				if err := c.Delete(); err != nil {
					t.Errorf("Delete(%s): %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	<-stop
	if cpErr != nil {
		t.Fatal(cpErr)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	es, _ := s.List()
	if len(es) != 8*10 {
		t.Errorf("%d messages left; want %d (the ones unlocked)", len(es), 8*10)
	}
	for _, e := range es {
		if e.State != Ready {
			t.Errorf("%s is %s", e.ID, e.State)
		}
		if _, err := os.Stat(s.contentPath(e.ID)); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
}

// TestServedKilledWritingOut: a process killed while a checkpoint wrote a
// served message out leaves its content without an envelope, or (written
// in place, before) a torn envelope; the replay under the same boot gives
// it a whole envelope from the record instead of leaving it for recovery
// to quarantine.
func TestServedKilledWritingOut(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	noEnv := newMessage(t, s, "Subject: no envelope yet\r\n\r\n")
	torn := newMessage(t, s, "Subject: torn envelope\r\n\r\n")
	j.kill()
	os.WriteFile(s.contentPath(noEnv), []byte("Subject: no envelope yet\r\n\r\n"), 0o640)
	os.WriteFile(s.contentPath(torn), []byte("Subject: torn envelope\r\n\r\n"), 0o640)
	os.WriteFile(s.envelopePath(torn, Ready), nil, 0o640)
	os.WriteFile(filepath.Join(dir, "."+noEnv+".content"), []byte("Subject: no"), 0o640)

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ready != 2 || len(rep.Quarantined) != 0 {
		t.Errorf("Recover = %+v; want both ready, nothing quarantined", rep)
	}
	for _, id := range []string{noEnv, torn} {
		if env, st, err := s2.Read(id); err != nil || st != Ready || env.From != "alice@example.com" {
			t.Errorf("%s: %v %v", id, st, err)
		}
	}
	if got := files(t, dir); len(got) != 4 {
		t.Errorf("files = %v; want two messages and no write-out leftovers", got)
	}
}

// TestServedInFlowWait: a message past the memory budget with every
// scratch slot taken waits for one (Postfix's in_flow_delay) rather than
// taking files at once, and takes files when none comes free in time.
func TestServedInFlowWait(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	serve(t, s)
	body := strings.Repeat("w", hotMaxContent+1)
	s.hot.files.Add(hotMaxFiles)
	got := make(chan string, 1)
	go func() { got <- newMessage(t, s, body) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case id := <-got:
		t.Fatalf("%s accepted while every slot was taken; want it to wait", id)
	default:
	}
	s.hot.files.Add(-1) // a delivered message lets go of its slot
	s.hot.roomMade()
	id := <-got
	if _, err := os.Stat(s.contentPath(id)); err == nil {
		t.Errorf("message that got a slot has files; want it served from the journal")
	}
	start := time.Now()
	late := newMessage(t, s, body) // the slot is taken again
	if d := time.Since(start); d < inFlowDelay {
		t.Errorf("with no slot, accepted after %v; want a wait of %v first", d, inFlowDelay)
	}
	if _, err := os.Stat(s.contentPath(late)); err != nil {
		t.Errorf("message that found no slot in time has no files: %v", err)
	}
	s.hot.files.Add(-hotMaxFiles + 1)
}

// TestCheckpointGrace: a served message of the segment a checkpoint closes
// that is delivered within writeOutGrace is never written out.
func TestCheckpointGrace(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	j.grace = time.Second
	id := newMessage(t, s, "Subject: quick\r\n\r\n")
	done := make(chan error, 1)
	go func() { done <- j.checkpoint() }()
	waitCheckpointBegun(t, s)
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if c.hot == nil {
		t.Error("message written out as soon as its segment closed; want it served through the grace")
	}
	if err := c.Delivered(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done, 15*time.Second, "checkpoint did not end")
	noFiles(t, dir, "after a checkpoint whose served message was delivered in its grace")
	if segs := s.segments(); len(segs) != 1 {
		t.Errorf("segments: %v; want the new one only", segs)
	}
}

// TestCheckpointGraceEndsAtShutdown: a checkpoint in its grace does not
// hold up the journal's end.
func TestCheckpointGraceEndsAtShutdown(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	j.grace = time.Minute
	newMessage(t, s, "Subject: waits\r\n\r\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	waitCheckpointBegun(t, s)
	cancel()
	waitDone(t, done, 10*time.Second, "Run still in the checkpoint's grace 10 s after it was told to stop")
	if s.serving() || len(s.segments()) != 0 {
		t.Errorf("after Run: serving %v, segments %v; want the message written out and none", s.serving(), s.segments())
	}
}

// waitCheckpointBegun waits until a checkpoint has opened its new segment.
func waitCheckpointBegun(t *testing.T, s *Spool) {
	t.Helper()
	for i := 0; len(s.segments()) < 2; i++ {
		if i == 500 {
			t.Fatal("no checkpoint began: no new segment")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDone waits for done's error, failing the test on one or after d.
func waitDone(t *testing.T, done <-chan error, d time.Duration, late string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatal(late)
	}
}
