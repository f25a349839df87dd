package spool

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAud12RootJournalKeepsSpoolOwner: root gives the files it makes in
// the spool to the spool directory's owner, the relay's own user
// (TestRevOps2RootKeepsSpoolOwner), but the journal's files were left
// root:root 0640: the .journal directory and its segments, the envelope
// of a message a filter saw (written as state new for the filter), and
// the envelope a checkpoint writes for a message served from memory. A
// relay run once as root on the spool and then, as its service, under its
// own user quarantined such a message at start ("open ...envelope:
// permission denied"), acknowledged and never delivered, and skipped the
// dead journal without a word (it could not open it), so the messages
// served from it were never written out.
func TestAud12RootJournalKeepsSpoolOwner(t *testing.T) {
	_, s, owned := ownedSpool(t)
	j := serve(t, s)
	// A message a filter sees: its files are written for it.
	filtered := commitNow(t, s, "filtered", true)
	// A message served from memory, written out by a checkpoint.
	served := commitNow(t, s, "served", false)
	if err := s.writeOutAll(0); err != nil {
		t.Fatal(err)
	}
	segs := s.segments()
	j.kill()
	owned("the journal's directory", journalDir)
	for _, seg := range segs {
		owned("a journal segment", filepath.Join(journalDir, seg))
	}
	owned("a filtered message's envelope", filtered+".envelope")
	owned("a filtered message's content", filtered+".content")
	owned("a served message's envelope, written out", served+".envelope")
	owned("a served message's content, written out", served+".content")
}

// TestAud12UnreadableSegmentReported: a dead process's journal segment
// that the replaying process may not open (root's, from before root gave
// them the spool's owner, or one an administrator made unreadable) was
// skipped without a word: the messages served from it, acknowledged, were
// neither written out nor reported, and the relay started as though there
// were nothing to replay. The replay says so in the log, naming the
// segment.
func TestAud12UnreadableSegmentReported(t *testing.T) {
	if dir := os.Getenv("RK_AUD12_CHILD"); dir != "" {
		s, err := Open(dir, slog.New(slog.NewTextHandler(os.Stdout, nil)))
		if err != nil {
			t.Fatal(err)
		}
		s.Replay()
		return
	}
	dir, _ := os.MkdirTemp("/tmp", "rkaud12")
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	if err := os.MkdirAll(filepath.Join(dir, journalDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, journalDir)} {
		os.Chown(d, 65534, 65534)
	}
	seg := filepath.Join(dir, journalDir, "00000000000000000001.log")
	b := (&record{typ: recHeader, boot: bootID()}).marshal()
	b = append(b, (&record{typ: recServed, id: "6B0252D2F906FE64", state: Ready,
		envelope: testEnvelope().Marshal(), content: []byte("Subject: x\r\n\r\nbody\r\n")}).marshal()...)
	if err := os.WriteFile(seg, b, 0o600); err != nil { // root's
		t.Fatal(err)
	}
	out, err := runAsNobody(t, "TestAud12UnreadableSegmentReported", "RK_AUD12_CHILD="+dir)
	if err != nil {
		t.Fatalf("replay as the spool's user: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "level=ERROR") || !strings.Contains(string(out), filepath.Base(seg)) {
		t.Errorf("a journal segment the replay cannot open was skipped without an error naming it; log:\n%s", out)
	}
}

// TestAud12NewDirectoriesSynced: a directory the spool makes is itself an
// entry in its parent directory, which only an fsync of the parent makes
// durable. The journal's directory, made at the first start, was fsynced
// (for the segment's name in it) but its own name in the spool directory
// never was, nor was a spool directory Open made, nor its quarantine
// directory: after a power loss soon after the first start, the file
// system may come back without them (in lost+found), and with them every
// message acknowledged from the journal, or from files in that spool.
func TestAud12NewDirectoriesSynced(t *testing.T) {
	var synced []string
	faultSyncPath = func(dir string) error {
		synced = append(synced, filepath.Clean(dir))
		return nil
	}
	defer func() { faultSyncPath = nil }()
	parent := t.TempDir()
	dir := filepath.Join(parent, "spool")
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	openJournal(t, s).kill()
	for _, d := range []struct{ made, parent string }{
		{dir, parent},
		{filepath.Join(dir, quarantineDir), dir},
		{filepath.Join(dir, journalDir), dir},
	} {
		if !slices.Contains(synced, d.parent) {
			t.Errorf("%s was made, but %s, which names it, was never fsynced (fsynced: %v)", d.made, d.parent, synced)
		}
	}
}

// TestAud12JournalDirRemovedWritesOut: the journal's directory removed
// while the relay runs (an administrator's clean-up, a tmpfiles rule) took
// the only durable copy of the messages served from memory. The
// checkpoint could start no new segment there and only said "journal
// checkpoint failed; will retry", once a second, for ever: the messages
// were never written to files, and a kill or a power loss lost them,
// acknowledged with 250. A checkpoint that finds the journal's segment no
// longer named in the spool writes out and syncs what it serves, and group
// commit stops, as after a failed sync.
func TestAud12JournalDirRemovedWritesOut(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := serve(t, s)
	id := commitNow(t, s, "served", false)
	if _, err := os.Stat(s.contentPath(id)); err == nil {
		t.Fatal("the message has files; want it served from memory")
	}
	if err := os.RemoveAll(filepath.Join(dir, journalDir)); err != nil {
		t.Fatal(err)
	}
	var syncs int
	faultSyncFS = func() error { syncs++; return nil }
	defer func() { faultSyncFS = nil }()
	j.checkpoint()
	if _, st, err := s.Read(id); err != nil || st != Ready {
		t.Fatalf("after a checkpoint with the journal's directory gone: %v %v; want the message written out, ready", st, err)
	}
	if _, err := os.Stat(s.contentPath(id)); err != nil {
		t.Errorf("the message's content was not written out: %v", err)
	}
	if syncs == 0 {
		t.Error("the files written out were never synced (syncfs)")
	}
	if s.journal.Load() != nil {
		t.Error("group commit goes on into a journal no restart reads")
	}
}

// commitNow accepts a message with subject, created now (so that a
// journal serves it from memory), and returns its id; filtered, a filter
// sees its files first.
func commitNow(t *testing.T, s *Spool, subject string, filtered bool) string {
	t.Helper()
	w, err := s.Create(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: "+subject+"\r\n\r\nbody\r\n")
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	if filtered {
		w.ContentPath()
		w.EnvelopePath()
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}
