package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commitMessage is newMessage returning Commit's error instead of failing.
func commitMessage(t *testing.T, s *Spool, content string) error {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		return err
	}
	io.WriteString(w, content)
	if err := w.Prepare(testEnvelope()); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// TestReviewDurSpoolRemovedUnderJournal: a spool directory removed (or
// moved away) while the daemon runs leaves the journal's segment open but
// nameless. A message synced into it is in no file that a restart reads:
// its commit must fail (452), as the classic path's does, not succeed.
func TestReviewDurSpoolRemovedUnderJournal(t *testing.T) {
	for _, how := range []string{"removed", "moved"} {
		t.Run(how, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "spool")
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			j := serve(t, s)
			defer j.kill()
			newMessage(t, s, "Subject: before\r\n\r\n")
			if how == "removed" {
				err = os.RemoveAll(dir)
			} else {
				err = os.Rename(dir, filepath.Join(parent, "elsewhere"))
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := commitMessage(t, s, "Subject: after\r\n\r\n"); err == nil {
					t.Fatalf("commit %d after the spool was %s succeeded; want an error (the client must hear 452)", i, how)
				}
			}
		})
	}
}

// TestReviewDurJournalLeavesRoomToWriteOut: a message served from the
// journal has no files until a checkpoint writes them, which needs as much
// room again. A journal that takes the file system's last bytes (or
// inodes) for served messages leaves no room for that: after a kill the
// replay cannot write them, keeps the segment, and the daemon starts with
// a full disk that its own journal fills, delivering none of them, on
// every start. The journal must stop serving (the commits fall back to
// their own files, or hear 452) while it still has room to write out
// everything it serves, so that a replay after a kill restores every
// acknowledged message.
func TestReviewDurJournalLeavesRoomToWriteOut(t *testing.T) {
	for _, c := range []struct{ name, opts string }{
		{"space", "2m"},
		{"inodes", "50m,nr_inodes=40"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, dir, s := tmpfsSpool(t, c.opts)
			j := serve(t, s)
			body := "Subject: fill\r\n\r\n" + strings.Repeat("x", 50<<10)
			ok := 0
			for range 80 {
				if err := commitMessage(t, s, body); err == nil {
					ok++
				}
			}
			j.kill()
			t.Logf("%d of 80 messages acknowledged", ok)
			if ok == 0 {
				t.Fatal("no message was accepted")
			}
			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatalf("replay after a kill, %d messages acknowledged: %v (report %v)", ok, err, rep)
			}
			es, _ := s2.List()
			if len(es) != ok {
				t.Errorf("%d messages in the spool after the replay; want the %d acknowledged", len(es), ok)
			}
		})
	}
}

// TestReviewDurReplayPastDamagedRecord: one damaged byte inside one
// record's payload (its header whole) costs that record, not every record
// after it. The segment of a killed daemon that served six messages from
// memory, the third record damaged: the other five acknowledged messages
// must come back, the segment be kept in quarantine and reported.
func TestReviewDurReplayPastDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	var ids []string
	for i := range 6 {
		ids = append(ids, newMessage(t, s, "Subject: "+strings.Repeat("x", i+1)+"\r\n\r\nbody\r\n"))
	}
	j.kill()
	segs := s.segments()
	path := filepath.Join(dir, journalDir, segs[0])
	b, _ := os.ReadFile(path)
	// Walk to the third message's record (after the header) and damage
	// its payload.
	off := 0
	for range 3 {
		off += recHeadLen + int(uint32(b[off+4])<<24|uint32(b[off+5])<<16|uint32(b[off+6])<<8|uint32(b[off+7]))
	}
	b[off+recHeadLen+30] ^= 0xff
	os.WriteFile(path, b, 0o640)

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.CorruptJournals) != 1 {
		t.Errorf("corrupt journals reported: %v; want 1", rep.CorruptJournals)
	}
	if q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "journal-*")); len(q) != 1 {
		t.Errorf("quarantined journal copies %v; want 1", q)
	}
	for i, id := range ids {
		_, st, err := s2.Read(id)
		if i == 2 {
			if err == nil {
				t.Errorf("message %d (damaged record) is %v; want it gone (only the quarantined copy has it)", i, st)
			}
			continue
		}
		if err != nil || st != Ready {
			t.Errorf("message %d after the replay: %v %v; want ready (its record is whole)", i, st, err)
		}
	}
}
