package spool

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestRev26TornHeadAcrossSector: a power loss whose lost sectors start
// inside a record's 12-octet head (a head that straddles a sector
// boundary) leaves that head's last octets zero, and zeros after it. That
// record was never synced, so never acknowledged: it is a torn tail, to be
// dropped quietly, not damage that quarantines the segment.
func TestRev26TornHeadAcrossSector(t *testing.T) {
	last := []*record{
		{typ: recDone, id: "6B0252D2F906FE65"},
		{typ: recAccepted, id: "6B0252D2F906FE66", state: Ready, envelope: testEnvelope().Marshal(), content: []byte("Subject: x\r\n\r\nbody\r\n")},
	}
	for _, lr := range last {
		for p := 1; p < recHeadLen; p++ {
			// A first record padded so that the second's head starts p
			// octets before the sector boundary at 1024.
			pad := &record{typ: recAccepted, id: "6B0252D2F906FE64", state: Ready, envelope: testEnvelope().Marshal()}
			pad.content = []byte(strings.Repeat("a", 1024-p-len(pad.marshal())))
			b := append(pad.marshal(), lr.marshal()...)
			if len(pad.marshal()) != 1024-p {
				t.Fatalf("pad is %d octets; want %d", len(pad.marshal()), 1024-p)
			}
			b = append(b, make([]byte, 4096)...)
			clear(b[1024:])
			got, err := readAll(b)
			if len(got) != 1 || err != nil && !errors.Is(err, errCutShort) {
				t.Errorf("%c record's head cut %d octets in: %d records, %v; want 1, then a record cut short or the end", lr.typ, p, len(got), err)
			}
		}
	}
}

// TestRev26DamagedLengthInZerosTrailingNULs: a record whose content ends
// in NUL octets (written before appendAt refused such records), whose
// LENGTH is then damaged to point further into the segment's zeros. The
// record is whole before the zeros that follow it: it must be reported as
// damage, not dropped quietly as a torn tail.
func TestRev26DamagedLengthInZerosTrailingNULs(t *testing.T) {
	recs := []*record{
		{typ: recHeader, boot: "boot"},
		{typ: recServed, id: "6B0252D2F906FE64", state: Ready, envelope: testEnvelope().Marshal(), content: []byte("Subject: one\r\n\r\nbody\r\n")},
		{typ: recServed, id: "6B0252D2F906FE65", state: Ready, envelope: testEnvelope().Marshal(), content: []byte("Subject: two\r\n\r\nbody\r\n" + strings.Repeat("\x00", 700))},
	}
	var b []byte
	last := 0
	for _, r := range recs {
		last = len(b)
		b = append(b, r.marshal()...)
	}
	b = append(b, make([]byte, 64<<10)...)
	binary.BigEndian.PutUint32(b[last+4:], binary.BigEndian.Uint32(b[last+4:])+4096)
	got, err := readAll(b)
	if len(got) != 2 || err == nil || errors.Is(err, errCutShort) {
		t.Errorf("%d records, %v; want 2, then a damaged record (not one cut short)", len(got), err)
	}
}

// TestRev26NoRecordEndsInZero: a record that a crash cut short ends in
// zeros (readRecord), so a whole record whose last octets are zero (a
// content ending in NULs: BDAT's last chunk may) with one octet damaged
// later read as a torn tail: its message, acknowledged, was dropped
// quietly, where a record that ends otherwise is reported as damage and
// its segment kept. Such a message takes the classic path: no journal
// record ends in a zero octet, and both messages are there after a kill.
func TestRev26NoRecordEndsInZero(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	newMessage(t, s, "Subject: one\r\n\r\nbody\r\n")
	newMessage(t, s, "Subject: two\r\n\r\nbody\r\n"+strings.Repeat("\x00", 700))
	j.kill()
	path := dir + "/" + journalDir + "/" + s.segments()[0]
	b := readSegment(t, path)
	for _, off := range append([]int{0}, recordOffsets(b)...) {
		if end := off + recHeadLen + int(binary.BigEndian.Uint32(b[off+4:])); b[end-1] == 0 {
			t.Errorf("the record at %d ends in a zero octet", off)
		}
	}
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil || rep.Ready != 2 || rep.TornTails != 0 || len(rep.CorruptJournals) != 0 {
		t.Errorf("Recover = %+v, %v; want 2 ready, nothing torn or corrupt", rep, err)
	}
}

// TestRev26TornSuffixRandom: journals of random records (contents with
// runs of NULs and "RK" inside, none ending in a zero octet, as appendAt
// writes them) followed by zeros, whose sectors from any one on were not
// written: each reads as the records whole before that sector, then a
// record cut short or the end; never as damage, never fewer records.
func TestRev26TornSuffixRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 26))
	alphabet := []byte("RK\x00\x00\x00ab\r\n")
	cases := 0
	for range 300 {
		recs := []*record{{typ: recHeader, boot: "boot"}}
		for range 1 + rng.IntN(8) {
			if rng.IntN(4) == 0 {
				recs = append(recs, &record{typ: recDone, id: "6B0252D2F906FE65"})
				continue
			}
			c := make([]byte, 1+rng.IntN(1500))
			for i := range c {
				c[i] = alphabet[rng.IntN(len(alphabet))]
			}
			c[len(c)-1] = '\n'
			recs = append(recs, &record{typ: recServed, id: "6B0252D2F906FE64", state: Ready, envelope: []byte("e"), content: c})
		}
		cases += tornAtEverySector(t, recs, 512)
	}
	t.Logf("%d torn journals read", cases)
}

// TestRev26PreallocLeavesRoom: the zeros of a new segment are a saving of
// time, not worth the room that messages need: on a file system with 20
// MiB free, a segment after one that held 8 MiB took 16 MiB of zeros,
// and the sessions heard 452 with 4 MiB left. It takes at most an eighth
// of what is free.
func TestRev26PreallocLeavesRoom(t *testing.T) {
	_, dir, s := tmpfsSpool(t, "32m")
	j := openJournal(t, s)
	j.tmpfs = false // fill as on a disk
	fillDisk(t, dir, 20<<20)
	free := func() int64 {
		var st syscall.Statfs_t
		syscall.Statfs(dir, &st)
		return int64(st.Bavail) * st.Bsize
	}
	j.mu.Lock()
	j.size = 8 << 20
	j.mu.Unlock()
	f, err := os.CreateTemp(dir, "seg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := free()
	j.preallocate(f, 0)
	fi, _ := f.Stat()
	if after := free(); after < before-before/8 || fi.Size() > before/8 {
		t.Errorf("preallocate filled %d bytes, free %d before, %d after; want at most an eighth of it taken", fi.Size(), before, after)
	}
}

// TestRev26FullDiskAcrossTheZeros: a record refused for lack of space
// where it straddles the end of a segment's zeros, part of it written: the
// segment is cut back to the journal's end (dropping the zeros after it),
// the journal goes on by appending, and a replay after a kill restores
// every message acknowledged, before and after, nothing torn or corrupt.
func TestRev26FullDiskAcrossTheZeros(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	if j.tmpfs {
		t.Fatalf("%s is on tmpfs: run the test with TMPDIR on a disk", dir)
	}
	path := dir + "/" + journalDir + "/" + s.segments()[0]
	fi, _ := os.Stat(path)
	zeros := fi.Size()
	body := "Subject: x\r\n\r\n" + strings.Repeat("y", 20000) + "\r\n"
	n := 0
	for j.size+30000 < zeros {
		newMessage(t, s, body)
		n++
	}
	faultAppend = func(f *os.File, b []byte, off int64) (int, error) {
		if off+int64(len(b)) <= zeros {
			t.Errorf("record at %d..%d within the zeros (%d)", off, off+int64(len(b)), zeros)
		}
		k, _ := f.WriteAt(b[:zeros-off+100], off)
		return k, syscall.ENOSPC
	}
	newMessage(t, s, strings.Repeat("z", 40000)+"\r\n") // falls back to its files
	faultAppend = nil
	if s.journal.Load() != j {
		t.Fatal("journal closed after a full disk; want it to go on")
	}
	fi, _ = os.Stat(path)
	if fi.Size() != j.size {
		t.Errorf("segment %d bytes after the refused record; want %d (the journal's end)", fi.Size(), j.size)
	}
	for range 3 {
		newMessage(t, s, body)
	}
	j.kill()
	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	if err != nil || rep.Ready != n+4 || rep.TornTails != 0 || len(rep.CorruptJournals) != 0 {
		t.Errorf("Recover = %+v, %v; want %d ready, nothing torn or corrupt", rep, err, n+4)
	}
}
