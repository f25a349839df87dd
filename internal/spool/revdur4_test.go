package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// damagedFirstRecord makes revDur3Segment's spool with the first
// message's content damaged, and returns the two records salvage finds
// after it ("two" and "three").
func damagedFirstRecord(t *testing.T) (dir string, recs []*record) {
	t.Helper()
	dir, path, b, _ := revDur3Segment(t)
	offs := recordOffsets(b)
	first := b[offs[0]:offs[1]]
	first[len(first)-3] ^= 0x20
	os.WriteFile(path, b, 0o640)
	recs, _ = salvageRecords(b, int64(offs[0]))
	if len(recs) != 2 {
		t.Fatalf("%d records after the damage; want 2", len(recs))
	}
	return dir, recs
}

// TestRevDur4SalvageFailureKeepsSegment: a message found after a damaged
// record that salvage could not set aside (a full disk at start, a
// quarantine it cannot write) was logged as "in the segment kept in
// quarantine", and the segment left the journal all the same: no later
// start looked at it again, queue quarantine listed it as though the
// messages after the damage were "set aside above", and nothing but a hex
// editor brought them back. The segment now stays in the journal, and
// the next start salvages them.
func TestRevDur4SalvageFailureKeepsSegment(t *testing.T) {
	dir, recs := damagedFirstRecord(t)
	// "two" cannot be written into quarantine.
	q := filepath.Join(dir, quarantineDir)
	block := filepath.Join(q, "."+recs[0].id+".content.salvage")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	s2.Recover()
	if got := s2.inspectQuarantined(recs[1].id); len(got.States) != 1 || got.States[0] != Held {
		t.Errorf("three, which could be set aside: %+v; want held in quarantine", got)
	}

	// Room again; the next start.
	os.RemoveAll(block)
	s3, _ := Open(dir, nil)
	if _, err := s3.Recover(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if got := s3.inspectQuarantined(r.id); got.Problem != "" || len(got.States) != 1 || got.States[0] != Held {
			t.Errorf("message %s after the next start: %+v; want restorable, held", r.id, got)
		}
	}
}
