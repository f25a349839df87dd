package spool

import (
	"io"
	"os"
	"path/filepath"
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
