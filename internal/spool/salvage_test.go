package spool

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// recordOffsets returns where each record after the header starts in a
// segment.
func recordOffsets(b []byte) []int {
	var offs []int
	for at := recHeadLen + int(binary.BigEndian.Uint32(b[4:])); at < len(b); at += recHeadLen + int(binary.BigEndian.Uint32(b[at+4:])) {
		offs = append(offs, at)
	}
	return offs
}

// TestSalvageAfterDamage: a record that fails its checks stopped the
// replay, and the messages recorded after it (acknowledged, and served from
// the journal, so with no other copy) were only in the segment kept in
// quarantine, with no way back but a hex editor. They are now set aside in
// quarantine, held, where queue restore puts them back; the damaged
// message itself is set aside too when only its length is damaged.
func TestSalvageAfterDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte, at int)
		want   []string // subjects set aside
	}{
		{"content", func(b []byte, at int) { b[len(b)-1-(len(b)-at)/2] ^= 0x20 }, nil},
		{"length", func(b []byte, at int) { b[at+5] ^= 0x08 }, []string{"one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, b, _ := revDur3Segment(t)
			offs := recordOffsets(b)
			if len(offs) != 3 {
				t.Fatalf("%d records; want 3", len(offs))
			}
			first := b[offs[0]:offs[1]]
			tc.damage(first, 0)
			os.WriteFile(path, b, 0o640)

			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.CorruptJournals) != 1 {
				t.Fatalf("report %+v; want the segment reported corrupt", rep)
			}
			want := append(tc.want, "two", "three")
			if len(rep.Quarantined) != len(want) {
				t.Fatalf("set aside %v; want %d messages (%v); %+v", rep.Quarantined, len(want), want, rep)
			}
			qs, _, _ := s2.ListQuarantine()
			var got []string
			for _, q := range qs {
				if q.Problem != "" || len(q.States) != 1 || q.States[0] != Held {
					t.Errorf("%s in quarantine: %+v; want restorable, held", q.ID, q)
				}
				c, _ := os.ReadFile(filepath.Join(dir, quarantineDir, q.ID+".content"))
				subj, _, _ := strings.Cut(strings.TrimPrefix(string(c), "Subject: "), "\r\n")
				got = append(got, subj)
				if !strings.Contains(rep.Reasons[q.ID], "damaged record") {
					t.Errorf("reason %q", rep.Reasons[q.ID])
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("set aside %v; want %v", got, want)
			}
			// Put back, it is held: the administrator releases it.
			from, to, err := s2.Restore(qs[0].ID)
			if err != nil || from != Held || to != Held {
				t.Errorf("Restore = %v, %v, %v; want held to held", from, to, err)
			}
			// A second start finds them in quarantine or the spool,
			// and sets nothing aside again.
			if os.WriteFile(path, b, 0o640) == nil {
				rep, _ := s2.Recover()
				if len(rep.Quarantined) != 0 {
					t.Errorf("second replay set aside %v again", rep.Quarantined)
				}
			}
		})
	}
}

// TestSalvageSkipsDelivered: a message noted as removed after the damage
// (in the same segment or a later one) was delivered; it is not set aside.
func TestSalvageSkipsDelivered(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	newMessage(t, s, "Subject: one\r\n\r\nbody\r\n")
	id := newMessage(t, s, "Subject: two\r\n\r\nbody\r\n")
	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delivered(); err != nil {
		t.Fatal(err)
	}
	s.WaitRemovals()
	j.kill()
	path := filepath.Join(dir, journalDir, s.segments()[0])
	b := readSegment(t, path)
	offs := recordOffsets(b)
	b[offs[0]+recHeadLen+3] ^= 1 // the first message's record
	os.WriteFile(path, b, 0o640)
	s2, _ := Open(dir, nil)
	rep, _ := s2.Recover()
	if len(rep.CorruptJournals) != 1 || len(rep.Quarantined) != 0 {
		t.Errorf("report %+v; want the segment corrupt and nothing set aside", rep)
	}
}

// TestSalvageRecordsInContent: bytes a client shaped as a record inside
// its message are never taken for one while the record around them is
// whole; found after damage, they are only set aside held.
func TestSalvageRecordsInContent(t *testing.T) {
	forged := (&record{typ: recAccepted, id: "00000001DEADBEEF", state: Ready,
		envelope: []byte("X-MailRelay-Format: #2821.8\r\n"), content: []byte("forged\r\n")}).marshal()
	outer := (&record{typ: recAccepted, id: "00000001CAFEF00D", state: Ready,
		envelope: []byte("env"), content: append([]byte("Subject: x\r\n\r\n"), forged...)}).marshal()
	data := append(append([]byte("garbage"), outer...), outer...)
	recs, _ := salvageRecords(data, 0)
	if len(recs) != 2 || recs[0].id != "00000001CAFEF00D" || recs[1].id != "00000001CAFEF00D" {
		t.Fatalf("found %d records; want the two outer ones", len(recs))
	}
	// The outer record's header damaged: the forged one inside is found.
	bad := append([]byte(nil), outer...)
	bad[8] ^= 1
	recs, _ = salvageRecords(bad, 0)
	if len(recs) != 1 || recs[0].id != "00000001DEADBEEF" {
		t.Fatalf("found %v; want the record shaped in the content", recs)
	}
}

func FuzzSalvageRecords(f *testing.F) {
	rec := (&record{typ: recAccepted, id: "00000001CAFEF00D", state: Ready, envelope: []byte("e"), content: []byte("RKc")}).marshal()
	f.Add(append([]byte("RKx\x00"), rec...), 0)
	f.Add(rec, 3)
	f.Fuzz(func(t *testing.T, data []byte, from int) {
		recs, _ := salvageRecords(data, int64(from))
		for _, r := range recs {
			if r.typ == recHeader || !ValidID(r.id) {
				t.Fatalf("salvaged %+v", r)
			}
		}
	})
}

// TestSalvageBounded: content shaped as thousands of long records' heads
// does not make the search checksum the segment thousands of times over.
func TestSalvageBounded(t *testing.T) {
	head := []byte("RKA\x00\x00\x0f\x00\x00\x00\x00\x00\x00") // 983,040 octets each
	data := bytes.Repeat(head, 1<<17)                         // 1.5 MiB
	start := time.Now()
	_, complete := salvageRecords(data, 0)
	if complete {
		t.Errorf("the search over %d heads went on to the end", 1<<17)
	}
	t.Logf("stopped after %v", time.Since(start))
}
