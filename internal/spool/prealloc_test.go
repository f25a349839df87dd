package spool

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// readSegment is a segment's records without the zeros that preallocate
// put after them: the layout of a segment that was not preallocated (an
// older relay's, or one on tmpfs), which the damage tests edit.
func readSegment(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := 0
	for at+recHeadLen <= len(b) && b[at] == 'R' {
		at += recHeadLen + int(binary.BigEndian.Uint32(b[at+4:]))
	}
	return b[:min(at, len(b))]
}

// preallocSegment serves three messages from a preallocated segment, kills
// the journal, and returns the segment's path and whole bytes and the
// offsets of its three records.
func preallocSegment(t *testing.T) (dir, path string, b []byte, offs []int) {
	t.Helper()
	dir = t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	if j.tmpfs {
		t.Fatalf("%s is on tmpfs, where segments are not preallocated: run the test with TMPDIR on a disk", dir)
	}
	path = filepath.Join(dir, journalDir, s.segments()[0])
	before, _ := os.Stat(path)
	for _, c := range []string{"Subject: one\r\n\r\nbody\r\n", "Subject: two\r\n\r\nbody\r\n", "Subject: three\r\n\r\nbody\r\n"} {
		newMessage(t, s, c)
	}
	j.kill()
	after, _ := os.Stat(path)
	if before.Size() < preallocMin || after.Size() != before.Size() {
		t.Fatalf("segment %d bytes before three records, %d after; want %d or more, unchanged", before.Size(), after.Size(), preallocMin)
	}
	b, _ = os.ReadFile(path)
	return dir, path, b, recordOffsets(readSegment(t, path))
}

// TestPreallocRecordsOverwriteZeros: a segment is filled with zeros when
// made, and records overwrite them, so that a commit's fdatasync does not
// also write the inode for a new size. The zeros are where the records end:
// a replay restores every message and reports neither damage nor a torn tail.
func TestPreallocRecordsOverwriteZeros(t *testing.T) {
	dir, _, _, offs := preallocSegment(t)
	if len(offs) != 3 {
		t.Fatalf("%d records; want 3", len(offs))
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil || rep.Ready != 3 || rep.TornTails != 0 || len(rep.CorruptJournals) != 0 {
		t.Errorf("Recover = %+v, %v; want 3 ready, nothing torn or corrupt", rep, err)
	}
}

// TestPreallocDamage: what a crash or a damaged disk leaves in a
// preallocated segment. A record cut short ends in zeros, not at the end of
// the file: it is a torn tail (never acknowledged), dropped quietly. Zeros
// where a record's head should be, with records after them, are damage; so
// is a last record whose LENGTH points past the zeros.
func TestPreallocDamage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		damage      func(b []byte, offs []int)
		wantReady   int
		wantTorn    int
		wantCorrupt int
	}{
		{"cut short", func(b []byte, offs []int) {
			// The record's sectors from the first after its head were not
			// written.
			from, end := (offs[2]+recHeadLen+511)/512*512, offs[2]+recHeadLen+int(binary.BigEndian.Uint32(b[offs[2]+4:]))
			if from >= end {
				t.Fatalf("record %d..%d holds no sector start", offs[2], end)
			}
			clear(b[from:end])
		}, 2, 1, 0},
		{"last octet damaged", func(b []byte, offs []int) {
			b[offs[2]+recHeadLen+int(binary.BigEndian.Uint32(b[offs[2]+4:]))-1] ^= 1
		}, 2, 0, 1},
		{"head zeroed", func(b []byte, offs []int) { clear(b[offs[1] : offs[1]+recHeadLen]) }, 1, 0, 1},
		{"length past the zeros", func(b []byte, offs []int) { b[offs[2]+5] ^= 0x40 }, 2, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, b, offs := preallocSegment(t)
			tc.damage(b, offs)
			os.WriteFile(path, b, 0o640)
			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatal(err)
			}
			if rep.Ready+len(rep.Quarantined) < tc.wantReady || rep.TornTails != tc.wantTorn || len(rep.CorruptJournals) != tc.wantCorrupt {
				t.Errorf("Recover = %+v; want %d ready, %d torn, %d corrupt", rep, tc.wantReady, tc.wantTorn, tc.wantCorrupt)
			}
		})
	}
}

// TestPreallocTornAtEverySector: a preallocated journal whose sectors from
// any one on were not written reads as the records whole before that
// sector, then a record cut short or a clean end; never as damage.
func TestPreallocTornAtEverySector(t *testing.T) {
	recs := append(testRecords(), &record{typ: recAccepted, id: "6B0252D2F906FE66", state: Ready,
		envelope: testEnvelope().Marshal(), content: make([]byte, 3000)}, &record{typ: recDone, id: "6B0252D2F906FE65"})
	for i := range recs[len(recs)-2].content {
		recs[len(recs)-2].content[i] = 'a' + byte(i%26)
	}
	tornAtEverySector(t, recs, 0)
	var all []byte
	for _, r := range recs {
		all = append(all, r.marshal()...)
	}
	all = append(all, make([]byte, 4096)...)
	got, err := readAll(all)
	if len(got) != len(recs) || err != nil {
		t.Errorf("whole journal and its zeros: %d records, %v; want %d, nil", len(got), err, len(recs))
	}
}

// tornAtEverySector writes recs and zeros after them, and for each sector
// from the one at from on, zeroes that sector and all after it: the
// journal must read as the records whole before it, then a record cut
// short or the end. It returns how many such journals it read.
func tornAtEverySector(t *testing.T, recs []*record, from int) int {
	t.Helper()
	var all []byte
	var ends []int
	for _, r := range recs {
		all = append(all, r.marshal()...)
		ends = append(ends, len(all))
	}
	all = append(all, make([]byte, 4096)...)
	n := 0
	for cut := from; cut < ends[len(ends)-1]; cut += 512 {
		n++
		b := append([]byte(nil), all...)
		clear(b[cut:])
		got, err := readAll(b)
		whole := 0
		for whole < len(ends) && ends[whole] <= cut {
			whole++
		}
		if len(got) != whole || err != nil && !errors.Is(err, errCutShort) {
			t.Fatalf("sectors from %d zero: %d records, %v; want %d, then a record cut short or the end", cut, len(got), err, whole)
		}
	}
	return n
}
