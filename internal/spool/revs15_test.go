package spool

import (
	"os"
	"path/filepath"
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
	dir, path, b, _ := revDur3Segment(t)
	offs := recordOffsets(b)
	first := b[offs[0]:offs[1]]
	first[len(first)-3] ^= 0x20 // the first message's content
	os.WriteFile(path, b, 0o640)
	recs, _ := salvageRecords(b, int64(offs[0]))
	if len(recs) != 2 {
		t.Fatalf("%d records after the damage; want 2", len(recs))
	}
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
