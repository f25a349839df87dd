package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRevS15SalvageKilledHalfway: salvage writes a message's content into
// quarantine, then its envelope. Killed between the two (kill -9, or the
// envelope's write failed), the next start found the content there, took
// the message for quarantined already and skipped it: it stayed without
// an envelope ("no envelope: write ID.envelope ... first"), queue restore
// refused it, and the envelope was only in the segment's bytes. A
// content file that is the record's own is now completed; one with other
// bytes (a message set aside before, or bytes a client shaped as a
// record) is never touched.
func TestRevS15SalvageKilledHalfway(t *testing.T) {
	dir, recs := damagedFirstRecord(t)
	q := filepath.Join(dir, quarantineDir)
	os.MkdirAll(q, 0o750)
	// "two": its content set aside, then the kill. "three": another
	// message of the same id in quarantine already, content only.
	os.WriteFile(filepath.Join(q, recs[0].id+".content"), recs[0].content, 0o640)
	os.WriteFile(filepath.Join(q, recs[1].id+".content"), []byte("Subject: another\r\n\r\nx\r\n"), 0o640)

	s2, _ := Open(dir, nil)
	if _, err := s2.Recover(); err != nil {
		t.Fatal(err)
	}
	if got := s2.inspectQuarantined(recs[0].id); got.Problem != "" || len(got.States) != 1 || got.States[0] != Held {
		t.Errorf("a message whose salvage was killed halfway: %+v; want restorable, held", got)
	}
	if c, _ := os.ReadFile(filepath.Join(q, recs[1].id+".content")); string(c) != "Subject: another\r\n\r\nx\r\n" {
		t.Errorf("a quarantined content file of the same id was overwritten: %q", c)
	}
	if got := s2.inspectQuarantined(recs[1].id); len(got.States) != 0 {
		t.Errorf("an envelope was put beside another message's content: %+v", got)
	}
}

// TestRevS15HugeEnvelope: whether a message went into the journal was
// decided by its content's size alone, but a record is read back only up
// to maxPayload (16 MiB), and an envelope file only up to maxEnvelope (16
// MiB). Since virtual_alias_maps, a small message's envelope can pass
// both: 1,000 recipients (ops+1@ ... ops+1000@) of an alias of a few
// hundred people. It was acknowledged with 250; at the next start its
// record read as a damaged one and the message was gone, and the
// segment's later messages (acknowledged too) were only salvaged into
// quarantine, held. Now Prepare refuses an envelope past
// MaxAcceptedEnvelope, and a record past maxPayload (a filter made the
// envelope large) takes the message's own files instead of the journal.
func TestRevS15HugeEnvelope(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	env := testEnvelope()
	env.Recipients = nil
	for i := 0; len(env.Recipients)*40 < maxPayload+(1<<20); i++ {
		env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("member%06d@example.net", i), Status: Pending, ORCPT: "rfc822;ops@example.com"})
	}
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: to everyone\r\n\r\nbody\r\n")
	if err := w.Prepare(env); !errors.Is(err, ErrEnvelopeTooLarge) {
		t.Errorf("Prepare(%d recipients) = %v; want ErrEnvelopeTooLarge", len(env.Recipients), err)
	}
	w.Abort()

	// A filter makes the envelope of a journaled message nearly
	// maxPayload long: with the content, past what the reader takes.
	w, err = s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: filtered\r\n\r\n"+strings.Repeat("b", 1000)+"\r\n")
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	big := testEnvelope()
	big.Recipients = env.Recipients[:(maxPayload-600000)/125]
	big.Helo = strings.Repeat("h", maxPayload-500-len(big.Marshal())) // just under, with the content past
	b := big.Marshal()
	if len(b) >= maxEnvelope || len(b) < maxPayload-1000 {
		t.Fatalf("envelope of %d octets; want just under %d", len(b), maxPayload)
	}
	os.WriteFile(w.EnvelopePath(), b, 0o640)
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	after := newMessage(t, s, "Subject: after\r\n\r\nbody\r\n")
	j.kill()

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.CorruptJournals) != 0 {
		t.Errorf("the journal read back as damaged: %v", rep.CorruptJournals)
	}
	for _, id := range []string{w.ID(), after} {
		got, st, err := s2.Read(id)
		if err != nil || st != Ready {
			t.Errorf("message %s after a restart: %v, %v; want it ready", id, st, err)
			continue
		}
		if id == w.ID() && len(got.Recipients) != len(big.Recipients) {
			t.Errorf("%d recipients; want %d", len(got.Recipients), len(big.Recipients))
		}
	}
}
