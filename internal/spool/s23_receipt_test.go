package spool

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// TestS23RecoveryLeavesReceiptUnderFilter: a filter that renames a new
// content file over the old ("mv $c.tmp $c") leaves the file under the
// message's name unlocked until the session's Relock. Recovery running in
// that moment (at start, in the background, while mail is already
// accepted) locked it, found only the .new envelope and set the message
// aside as a receipt never completed; the session's Relock then found no
// file, took the message for abandoned by the filter, and the client heard
// 250 for a message never delivered (fresh23b saw it in
// TestReview12FilterEditsKill). This process's receipts are now left alone.
func TestS23RecoveryLeavesReceiptUnderFilter(t *testing.T) {
	for _, journal := range []bool{false, true} {
		s, _ := Open(t.TempDir(), nil)
		if journal {
			openJournal(t, s)
		}
		const want = "Subject: edited by a filter\r\n\r\n"
		w := filteredReceipt(t, s, want)
		rep, err := s.RecoverFiles(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Quarantined) > 0 {
			t.Errorf("journal %v: recovery during the filter quarantined %v", journal, rep.Quarantined)
		}
		if err := w.Relock(); err != nil {
			t.Fatalf("journal %v: Relock after recovery: %v", journal, err)
		}
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(s.contentPath(w.ID()))
		if _, st, rerr := s.Read(w.ID()); err != nil || rerr != nil || st != Ready || string(got) != want {
			t.Errorf("journal %v: after commit %q in state %v (%v, %v); want the filtered message ready", journal, got, st, err, rerr)
		}
		// Its receipt over, the id is recovery's again.
		if s.inReceipt(w.ID()) {
			t.Errorf("journal %v: still marked in receipt after Commit", journal)
		}
	}
}

// TestS23RelockRefusesAMessageSetAside: when another process's recovery
// (which this process's receipts cannot shield) moves the files to
// quarantine while a filter has them unlocked, Relock says so instead of
// reporting them missing, which the session took for the filter's
// abandoning the message, with 250 to the client.
func TestS23RelockRefusesAMessageSetAside(t *testing.T) {
	s, _ := Open(t.TempDir(), nil)
	w := filteredReceipt(t, s, "Subject: edited\r\n\r\n")
	other, _ := Open(s.Dir(), nil) // another process, with no receipts of its own
	if rep, err := other.RecoverFiles(context.Background()); err != nil || len(rep.Quarantined) != 1 {
		t.Fatalf("the other process's recovery: %+v, %v; want the unlocked receipt set aside", rep, err)
	}
	err := w.Relock()
	if err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("Relock after the files went to quarantine = %v; want an error that is not 'no such file'", err)
	}
	w.Abort()
}

// filteredReceipt is a receipt prepared in s whose content a filter has
// replaced with text by renaming a new file over it, as E-MailRelay's
// addsig does.
func filteredReceipt(t *testing.T, s *Spool, text string) *Writer {
	t.Helper()
	w, err := s.Create(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: received\r\n\r\n")
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(w.ContentPath()+".tmp", []byte(text), 0o640)
	os.Rename(w.ContentPath()+".tmp", w.ContentPath())
	return w
}
