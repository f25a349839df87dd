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
