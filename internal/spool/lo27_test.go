package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLo27TornTailKept: a disk that returns zeros for the last sectors of
// an acknowledged record makes it read as a torn tail, which replay drops
// (a crash's unsynced write looks the same). The octets of the tail are
// kept in quarantine, so that an administrator can still get at such a
// message; the replay reports the tail as before.
func TestLo27TornTailKept(t *testing.T) {
	dir, path, b, offs := preallocSegment(t)
	if len(offs) != 3 {
		t.Fatalf("%d records; want 3", len(offs))
	}
	from := (offs[2] + recHeadLen + 511) / 512 * 512
	end := offs[2] + recHeadLen + int(binary.BigEndian.Uint32(b[offs[2]+4:]))
	if from >= end {
		t.Fatalf("record %d..%d holds no sector start", offs[2], end)
	}
	clear(b[from:end])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil || rep.TornTails != 1 || len(rep.CorruptJournals) != 0 {
		t.Fatalf("Recover = %+v, %v; want one torn tail, nothing corrupt", rep, err)
	}
	q := fmt.Sprintf("%s.torn-%d", journalQuarantine(dir, path), offs[2])
	got, err := os.ReadFile(q)
	if err != nil {
		des, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
		t.Fatalf("no copy of the torn tail (%v); quarantine holds %v", err, des)
	}
	if want := bytes.TrimRight(b[offs[2]:from], "\x00"); !bytes.Equal(got, want) {
		t.Errorf("the copy holds %d octets; want the tail's %d", len(got), len(want))
	}
}
