package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func testRecords() []*record {
	return []*record{
		{typ: recHeader, boot: "b0a1"},
		{typ: recAccepted, id: "6B0252D2F906FE64", state: Ready, envelope: testEnvelope().Marshal(), content: []byte("Subject: x\r\n\r\nhello\r\n")},
		{typ: recAccepted, id: "6B0252D2F906FE65", state: Held, envelope: []byte("e"), content: nil},
		{typ: recDone, id: "6B0252D2F906FE64"},
	}
}

func readAll(b []byte) ([]*record, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	var out []*record
	for off := int64(0); ; {
		r, err := readRecord(br, off)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		off += int64(recHeadLen + payloadLen(r))
		out = append(out, r)
	}
}

var cmpRecord = cmp.Comparer(func(a, b *record) bool {
	return bytes.Equal(a.marshal(), b.marshal())
})

// TestRecordTornTail: a journal cut at any byte yields exactly the records
// that are whole before the cut, then errCutShort (or a clean end).
func TestRecordTornTail(t *testing.T) {
	var all []byte
	var ends []int
	for _, r := range testRecords() {
		all = append(all, r.marshal()...)
		ends = append(ends, len(all))
	}
	for cut := 0; cut <= len(all); cut++ {
		got, err := readAll(all[:cut])
		whole := 0
		for _, e := range ends {
			if e <= cut {
				whole++
			}
		}
		if diff := cmp.Diff(testRecords()[:whole], got, cmpRecord, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("cut at %d: records differ (-want +got):\n%s", cut, diff)
		}
		atEnd := cut == 0 || whole > 0 && ends[whole-1] == cut
		if atEnd && err != nil || !atEnd && !errors.Is(err, errCutShort) {
			t.Fatalf("cut at %d: err = %v; want %v", cut, err, map[bool]string{true: "none", false: "cut short"}[atEnd])
		}
	}
}

// TestRecordCorrupt: a flipped byte anywhere in a record is caught.
func TestRecordCorrupt(t *testing.T) {
	b := testRecords()[1].marshal()
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		got, err := readAll(c)
		if err == nil {
			t.Fatalf("byte %d flipped: read %d records and no error", i, len(got))
		}
	}
}

func FuzzReadRecord(f *testing.F) {
	for _, r := range testRecords() {
		f.Add(r.marshal())
	}
	f.Add([]byte("RKA\x00\x00\x00\x00\x05\x00\x00\x00\x00hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _ := readAll(b)
		// What reads must encode back to the bytes it was read from.
		var again []byte
		for _, r := range recs {
			again = append(again, r.marshal()...)
		}
		if !bytes.HasPrefix(b, again) {
			t.Fatalf("records do not re-encode to their input")
		}
	})
}

// openJournal opens a journal without its Run loop; kill simulates the
// process dying: the segment stays, its lock goes.
func openJournal(t *testing.T, s *Spool) *Journal {
	t.Helper()
	j, err := s.OpenJournal()
	if err != nil {
		t.Fatal(err)
	}
	j.grace = 0
	return j
}

// journalWithFiles opens a spool in a new directory with a journal whose
// messages keep their files (none served from memory).
func journalWithFiles(t *testing.T) (string, *Spool, *Journal) {
	t.Helper()
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	s.noHot = true
	return dir, s, openJournal(t, s)
}

func (j *Journal) kill() {
	j.s.journal.Store(nil)
	j.mu.Lock()
	j.closed = true
	j.f.Close()
	j.mu.Unlock()
}

// TestGroupCommit: concurrent commits share fdatasyncs, every one of them
// is in a synced record, and a checkpoint leaves plain spool files only.
func TestGroupCommit(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	const n = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ids[i] = newMessage(t, s, "Subject: group\r\n\r\nbody\r\n")
		}()
	}
	// The first session to sync waits until every commit has written
	// its record, as on a busy disk: under a loaded CI run the
	// goroutines could otherwise run one after another, each syncing
	// alone, and the test failed by the scheduler's choice.
	j.syncMu.Lock()
	close(start)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		j.mu.Lock()
		w := j.written
		j.mu.Unlock()
		if w >= n {
			break
		}
	}
	j.syncMu.Unlock()
	wg.Wait()
	if j.synced != n {
		t.Errorf("synced = %d records; want %d", j.synced, n)
	}
	if b := j.batches.Load(); b >= n {
		t.Errorf("%d fdatasyncs for %d concurrent commits; want fewer (shared)", b, n)
	} else {
		t.Logf("%d commits in %d fdatasyncs", n, b)
	}
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if segs := s.segments(); len(segs) != 1 {
		t.Errorf("after a checkpoint: segments %v; want only the new one", segs)
	}
	es, _ := s.List()
	if len(es) != n {
		t.Errorf("spool lists %d messages; want %d", len(es), n)
	}
	for _, e := range es {
		if e.State != Ready {
			t.Errorf("%s is %s; want ready", e.ID, e.State)
		}
	}
	// Deletions are noted; after close nothing of the journal is left.
	c, err := s.Claim(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if segs := s.segments(); len(segs) != 0 {
		t.Errorf("after close: segments %v; want none", segs)
	}
	// After close, commits take the classic path.
	newMessage(t, s, "Subject: classic\r\n\r\n")
}

// TestReplaySameBoot: a process killed after its record was synced but
// before the rename leaves an envelope in state New; the journal makes it
// Ready instead of letting Recover quarantine it.
func TestReplaySameBoot(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s)
	id := newMessage(t, s, "Subject: one\r\n\r\n")
	gone := newMessage(t, s, "Subject: two\r\n\r\n")
	c, _ := s.Claim(gone)
	c.Delete()
	os.Rename(s.envelopePath(id, Ready), s.envelopePath(id, New))
	j.kill()

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(rep.Restored, []string{id}) || rep.Ready != 1 || len(rep.Quarantined) != 0 || rep.Replayed != 3 {
		t.Errorf("Recover = %+v; want %s restored and ready, 3 records, nothing quarantined", rep, id)
	}
	if _, st, err := s2.Read(id); err != nil || st != Ready {
		t.Errorf("Read(%s) = %v, %v; want ready", id, st, err)
	}
	if segs := s2.segments(); len(segs) != 0 {
		t.Errorf("segments %v left after replay", segs)
	}
}

// TestReplayAfterPowerLoss: under another boot, the journal is the truth
// for what the files lost: missing or torn content, a lost envelope, a lost
// rename; and a message noted as done does not come back.
func TestReplayAfterPowerLoss(t *testing.T) {
	dir, s, j := journalWithFiles(t)
	content := map[string]string{}
	var ids []string
	for i, body := range []string{"lost\r\n", "torn\r\n", "no envelope\r\n", "not renamed\r\n", "intact\r\n"} {
		id := newMessage(t, s, "Subject: "+body+"\r\n"+strings.Repeat("x", i*1000)+"\r\n")
		ids = append(ids, id)
		b, _ := os.ReadFile(s.contentPath(id))
		content[id] = string(b)
	}
	done := newMessage(t, s, "Subject: delivered\r\n\r\n")
	c, _ := s.Claim(done)
	c.Delete()
	j.kill()

	// What a power loss may do to files that were never synced.
	os.Remove(s.contentPath(ids[0]))
	os.Truncate(s.contentPath(ids[1]), 7)
	os.Remove(s.envelopePath(ids[2], Ready))
	os.Rename(s.envelopePath(ids[3], Ready), s.envelopePath(ids[3], New))
	os.WriteFile(s.contentPath(done), []byte("came back"), 0o640)
	os.WriteFile(s.envelopePath(done, Ready), testEnvelope().Marshal(), 0o640)

	s2, _ := Open(dir, nil)
	s2.boot = "another boot"
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids[:4], rep.Restored); diff != "" || rep.Ready != 5 || len(rep.Quarantined) != 0 {
		t.Errorf("Recover = %+v; restored differs (-want +got):\n%s", rep, diff)
	}
	for _, id := range ids {
		env, st, err := s2.Read(id)
		got, _ := os.ReadFile(s2.contentPath(id))
		if err != nil || st != Ready || string(got) != content[id] || env.From != "alice@example.com" {
			t.Errorf("%s: state %v err %v, content %q; want ready with %q", id, st, err, got, content[id])
		}
	}
	if _, _, err := s2.Read(done); !errors.Is(err, ErrNotFound) {
		t.Errorf("delivered %s came back: %v", done, err)
	}
	if _, err := os.Stat(s2.contentPath(done)); err == nil {
		t.Errorf("delivered %s: content file left", done)
	}
}

// TestReplayTornAndCorrupt: a record cut short at the end is dropped
// (it was never acknowledged), a copy of it kept; a corrupt one stops the replay of
// its segment, which is copied to quarantine and reported.
func TestReplayTornAndCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tail        func(seg []byte) []byte
		wantTorn    int
		wantCorrupt int
		wantReady   int
	}{
		{"cut short", func(seg []byte) []byte {
			extra := (&record{typ: recAccepted, id: "6B0252D2F906FEFF", state: Ready, envelope: []byte("e"), content: []byte("c")}).marshal()
			return append(seg, extra[:len(extra)-3]...)
		}, 1, 0, 2},
		{"corrupt middle", func(seg []byte) []byte {
			seg[len(seg)-5] ^= 0xff // inside the last record's payload
			return seg
		}, 0, 1, 2}, // the second message's files are still there (same boot)
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, s, j := journalWithFiles(t)
			newMessage(t, s, "Subject: a\r\n\r\n")
			newMessage(t, s, "Subject: b\r\n\r\n")
			j.kill()
			segs := s.segments()
			path := filepath.Join(dir, journalDir, segs[0])
			b := readSegment(t, path)
			os.WriteFile(path, tc.tail(b), 0o640)

			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatal(err)
			}
			if rep.TornTails != tc.wantTorn || len(rep.CorruptJournals) != tc.wantCorrupt || rep.Ready != tc.wantReady {
				t.Errorf("Recover = %+v; want %d torn, %d corrupt, %d ready", rep, tc.wantTorn, tc.wantCorrupt, tc.wantReady)
			}
			q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "journal-*.log"))
			if len(q) != tc.wantCorrupt {
				t.Errorf("quarantined journal copies %v; want %d", q, tc.wantCorrupt)
			}
			// A torn tail longer than a record head is kept too (lo27).
			q, _ = filepath.Glob(filepath.Join(dir, quarantineDir, "journal-*.torn-*"))
			if len(q) != tc.wantTorn {
				t.Errorf("quarantined torn tails %v; want %d", q, tc.wantTorn)
			}
		})
	}
}

// TestJournalSyncFailure: after a failed fdatasync (or write) the journal
// is closed for good, and every later commit is made durable the classic
// way instead; none is lost or refused.
func TestJournalSyncFailure(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s)
	j.mu.Lock()
	f := j.f
	j.mu.Unlock()
	seq, err := j.append(&record{typ: recDone, id: "X"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close() // the fdatasync fails (EBADF), as after an I/O error
	if err := j.waitSynced(seq); err == nil || s.journal.Load() != nil {
		t.Fatalf("waitSynced after a failed fdatasync = %v, journal still open: %v; want an error, and closed", err, s.journal.Load() != nil)
	}
	id := newMessage(t, s, "Subject: after the failure\r\n\r\n")
	id2 := newMessage(t, s, "Subject: later\r\n\r\n")
	for _, id := range []string{id, id2} {
		if _, st, err := s.Read(id); err != nil || st != Ready {
			t.Errorf("Read(%s) = %v, %v; want ready", id, st, err)
		}
	}
}

// TestJournalWriteFailure: a failed write closes the journal too: a record
// appended after a torn one would be out of replay's reach.
// TestJournalFullDisk: a journal write cut short by a full disk is cut off
// again, and the journal goes on: the message falls back to its own files
// (here refused too: the disk is full), the next one is journalled, and a
// replay reads every record, none torn.
func TestJournalFullDisk(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s)
	faultAppend = func(f *os.File, b []byte, off int64) (int, error) {
		n, _ := f.WriteAt(b[:len(b)/2], off)
		return n, syscall.ENOSPC
	}
	_, err := j.appendAccepted(&record{typ: recAccepted, id: "6B0252D2F906FE64", state: Ready, envelope: []byte("e"), content: []byte("half")})
	faultAppend = nil
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk = %v; want ENOSPC", err)
	}
	if s.journal.Load() != j {
		t.Fatal("journal closed after a full disk; want it to go on")
	}
	id := newMessage(t, s, "Subject: after\r\n\r\n")
	if n := j.written; n != 1 {
		t.Errorf("records written = %d; want 1 (the message after the full disk)", n)
	}
	j.kill()
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rep.TornTails != 0 || len(rep.CorruptJournals) != 0 || rep.Replayed < 1 {
		t.Errorf("replay: %+v; want the record read, nothing torn", rep)
	}
	if _, st, err := s2.Read(id); err != nil || st != Ready {
		t.Errorf("Read(%s) after replay = %v, %v; want ready", id, st, err)
	}
}

// TestJournalFullDiskNFS: on NFS, where write(2) may report an earlier
// write-back failure as ENOSPC, a full disk closes the journal as any other
// write error does.
func TestJournalFullDiskNFS(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	j.nfs = true
	faultAppend = func(*os.File, []byte, int64) (int, error) { return 0, syscall.ENOSPC }
	_, err := j.appendAccepted(&record{typ: recDone, id: "6B0252D2F906FE64"})
	faultAppend = nil
	if err == nil || s.journal.Load() != nil {
		t.Errorf("append on a full NFS disk = %v, journal open %v; want the error and the journal closed", err, s.journal.Load() != nil)
	}
}

func TestJournalWriteFailure(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	j.mu.Lock()
	j.f.Close()
	j.mu.Unlock()
	id := newMessage(t, s, "Subject: x\r\n\r\n")
	if s.journal.Load() != nil {
		t.Errorf("journal still open after a failed write")
	}
	if _, st, err := s.Read(id); err != nil || st != Ready {
		t.Errorf("Read(%s) = %v, %v; want ready", id, st, err)
	}
}

// TestJournalKeepsFilterEdits: a filter that edits the files between
// Prepare and Commit (through the paths it was given) is what the journal
// records, so a power loss brings back the edited message, not the one
// received; without a filter, Commit journals what Prepare wrote.
func TestJournalKeepsFilterEdits(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		dir := t.TempDir()
		s, _ := Open(dir, nil)
		j := openJournal(t, s)
		w, err := s.Create(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Subject: received\r\n\r\n")
		env := testEnvelope()
		if err := w.Prepare(env); err != nil {
			t.Fatal(err)
		}
		want, wantFrom := "Subject: received\r\n\r\n", env.From
		if filtered {
			// E-MailRelay's addsig: a new content file renamed over the
			// old, and an edited envelope.
			want = "Subject: edited by a filter\r\n\r\n"
			os.WriteFile(w.ContentPath()+".tmp", []byte(want), 0o640)
			os.Rename(w.ContentPath()+".tmp", w.ContentPath())
			env.From, wantFrom = "filter@example.com", "filter@example.com"
			os.WriteFile(w.EnvelopePath(), env.Marshal(), 0o640)
			if err := w.Relock(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
		id := w.ID()
		j.kill()
		os.Remove(s.contentPath(id)) // a power loss took both files
		os.Remove(s.envelopePath(id, Ready))

		s2, _ := Open(dir, nil)
		s2.boot = "another boot"
		if _, err := s2.Recover(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(s2.contentPath(id))
		e, _, err := s2.Read(id)
		if err != nil || string(got) != want || e.From != wantFrom {
			t.Errorf("filtered=%v: after replay content %q from %q (err %v); want %q from %q", filtered, got, e.From, err, want, wantFrom)
		}
	}
}

// TestCheckpointSyncFailureKeepsJournal: after a failed syncfs the journal
// is not retired by a later sync that succeeds (which says nothing of the
// pages the failed one dropped): group commit stops, the segments stay,
// and the next start checks the files against them even under this boot,
// restoring content that write-back lost.
func TestCheckpointSyncFailureKeepsJournal(t *testing.T) {
	dir, s, j := journalWithFiles(t)
	id := newMessage(t, s, "Subject: journalled\r\n\r\nthe body\r\n")
	want, _ := os.ReadFile(s.contentPath(id))
	j.fsDir.Close() // the syncfs fails (EBADF), as after a write-back error
	if err := j.checkpoint(); err == nil {
		t.Fatal("checkpoint with a failing syncfs succeeded")
	}
	if s.journal.Load() != nil {
		t.Error("group commit still on after a failed syncfs")
	}
	if err := j.checkpoint(); !errors.Is(err, errJournalKept) {
		t.Errorf("second checkpoint = %v; want %v", err, errJournalKept)
	}
	later := newMessage(t, s, "Subject: classic path\r\n\r\n")
	j.close()
	for _, o := range j.old {
		o.f.Close() // the process ends; its locks go
	}
	if len(s.segments()) == 0 {
		t.Fatal("segments removed after a failed syncfs")
	}
	if _, err := os.Stat(filepath.Join(dir, journalDir, unsyncedMarker)); err != nil {
		t.Fatalf("no marker: %v", err)
	}
	// What the dropped pages may have been.
	os.Truncate(s.contentPath(id), 3)

	s2, _ := Open(dir, nil) // the same boot
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(s2.contentPath(id)); string(got) != string(want) {
		t.Errorf("content after replay = %q; want %q (report %+v)", got, want, rep)
	}
	for _, m := range []string{id, later} {
		if _, st, err := s2.Read(m); err != nil || st != Ready {
			t.Errorf("Read(%s) = %v, %v; want ready", m, st, err)
		}
	}
	if segs := s2.segments(); len(segs) != 0 {
		t.Errorf("segments %v left after the replay", segs)
	}
	if _, err := os.Stat(filepath.Join(dir, journalDir, unsyncedMarker)); err == nil {
		t.Error("marker left after the replay")
	}
}

// failOnce makes the first sync through hook fail, as a write-back error
// would, and the later ones succeed, as the kernel reports such an error
// only once; it returns a channel closed at the failure.
func failOnce(t *testing.T, hook *func() error) <-chan struct{} {
	t.Helper()
	failed := make(chan struct{})
	var calls atomic.Int32
	*hook = func() error {
		if calls.Add(1) == 1 {
			close(failed)
			return errors.New("EIO (injected)")
		}
		return nil
	}
	t.Cleanup(func() { *hook = nil })
	return failed
}

// TestCloseFailedSyncFailsWaiters: a session whose record was appended
// before the journal closed, and that waits for it after close's fdatasync
// failed, hears the failure. Before, it ran fdatasync again, which succeeds
// once the error has been reported, and would have said 250 for a record
// whose pages may be gone.
func TestCloseFailedSyncFailsWaiters(t *testing.T) {
	_, _, j := journalWithFiles(t)
	failed := failOnce(t, &faultSyncData)
	a, err := j.appendAccepted(&record{typ: recDone, id: "0000000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- j.close() }()
	<-failed
	err = j.waitSynced(a.seq)
	a.settled()
	<-closed
	if err == nil {
		t.Errorf("waitSynced = nil after close's fdatasync failed; want the failure (the session would say 250)")
	}
}

// TestCheckpointFailedSyncMarksFirst: after a failed fdatasync the marker
// is down before the checkpoint waits for the sessions still on the
// segment, which a failing disk can make long: a kill meanwhile must not
// leave a journal that the next start under this boot trusts.
func TestCheckpointFailedSyncMarksFirst(t *testing.T) {
	dir, _, j := journalWithFiles(t)
	failOnce(t, &faultSyncData)
	a, err := j.appendAccepted(&record{typ: recDone, id: "0000000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	settled := a.settled
	done := make(chan error, 1)
	go func() { done <- j.checkpoint() }()
	marker := filepath.Join(dir, journalDir, unsyncedMarker)
	for i := 0; ; i++ {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if i == 500 {
			settled()
			t.Fatalf("no marker while the checkpoint waits for its session (checkpoint: %v)", <-done)
		}
		time.Sleep(10 * time.Millisecond)
	}
	settled()
	if err := <-done; err == nil {
		t.Error("checkpoint after a failed fdatasync = nil; want its error")
	}
}

// TestReplaySyncfsFailureMarks: a replay whose syncfs fails (a write-back
// error the dead process never saw) keeps the segments and leaves the
// marker, so that the next replay under the same boot, whose syncfs
// succeeds now that the error has been reported, still checks the files
// against the records instead of trusting them and dropping the only good
// copy.
func TestReplaySyncfsFailureMarks(t *testing.T) {
	dir, s, j := journalWithFiles(t)
	id := newMessage(t, s, "Subject: journalled\r\n\r\nthe body\r\n")
	want, _ := os.ReadFile(s.contentPath(id))
	j.kill()
	os.Truncate(s.contentPath(id), 3) // the pages the write-back lost
	failOnce(t, &faultSyncFS)
	s2, _ := Open(dir, nil) // the same boot
	if _, err := s2.Replay(); err == nil {
		t.Fatal("replay with a failing syncfs = nil; want its error")
	}
	if _, err := os.Stat(filepath.Join(dir, journalDir, unsyncedMarker)); err != nil {
		t.Errorf("no marker after the replay's syncfs failed: %v", err)
	}
	s3, _ := Open(dir, nil)
	if _, err := s3.Replay(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(s3.contentPath(id)); string(got) != string(want) {
		t.Errorf("content after the next replay = %q; want %q (segments left: %v)", got, want, s3.segments())
	}
}

// TestRetireKeepsUnremovableSegmentLocked: a written-out segment whose
// removal failed (EROFS for one call, in TestDur19FaultInjection) was
// closed anyway: left unlocked under its name, it looked like the journal
// of a relay that had died, and its replay, a second later, brought back
// messages delivered since (one was delivered three times). It now stays
// locked, with the segments after it, and goes at the next checkpoint.
func TestRetireKeepsUnremovableSegmentLocked(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	newMessage(t, s, "Subject: one\r\n\r\nbody\r\n")
	defer func(f func(string) error) { removeSegment = f }(removeSegment)
	removeSegment = func(string) error { return syscall.EROFS }
	if err := j.checkpoint(); !errors.Is(err, syscall.EROFS) {
		t.Errorf("checkpoint with a segment that cannot be removed = %v; want EROFS", err)
	}
	if len(s.segments()) != 2 {
		t.Fatalf("segments %v; want the old one kept beside the new", s.segments())
	}
	if s.deadSegment() {
		t.Error("the kept segment looks like a dead relay's journal (not locked)")
	}
	removeSegment = os.Remove
	if err := j.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if segs := s.segments(); len(segs) != 1 {
		t.Errorf("after the next checkpoint: segments %v; want only the current one", segs)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
}

// TestS25UnremovableSegmentsStopGroupCommit: a segment whose removal keeps
// failing while new ones can be made kept one more segment open at every
// checkpoint (one descriptor a second, with an error each time, until the
// process had none left; the s24 note). Past maxKeptSegments group commit
// stops, as after a failed sync: the segments stay for the next start and
// commits take the classic path.
func TestS25UnremovableSegmentsStopGroupCommit(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	j := openJournal(t, s)
	defer func(f func(string) error) { removeSegment = f }(removeSegment)
	removeSegment = func(string) error { return syscall.EPERM }
	for i := range 3 * maxKeptSegments {
		newMessage(t, s, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
		j.checkpoint()
	}
	if n := len(s.segments()); n > maxKeptSegments+1 {
		t.Errorf("%d segments after %d checkpoints that could not remove any; want at most %d", n, 3*maxKeptSegments, maxKeptSegments+1)
	}
	if s.journal.Load() != nil {
		t.Error("group commit still on")
	}
	id := newMessage(t, s, "Subject: after\r\n\r\nbody\r\n")
	if _, err := os.Stat(s.contentPath(id)); err != nil {
		t.Errorf("a message committed after group commit stopped has no content file: %v", err)
	}
	j.close()
}
