package spool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// revDur3Segment makes a spool whose journal serves three messages, kills
// the journal, and returns the spool, its segment's path and bytes, and
// where the first message's record starts in them.
func revDur3Segment(t *testing.T) (dir, path string, b []byte, off int) {
	t.Helper()
	dir = t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	for _, c := range []string{"Subject: one\r\n\r\nbody\r\n", "Subject: two\r\n\r\nbody\r\n", "Subject: three\r\n\r\nbody\r\n"} {
		newMessage(t, s, c)
	}
	j.kill()
	path = filepath.Join(dir, journalDir, s.segments()[0])
	b = readSegment(t, path)
	return dir, path, b, recHeadLen + int(binary.BigEndian.Uint32(b[4:])) // past the header record
}

// TestRevDur3LengthPastEnd: a damaged LENGTH in a synced record that
// points past the end of its segment is not the torn tail of a write a
// crash interrupted: the record is whole (its CRC checks out over the
// bytes up to the next record, or to the end), so its client heard 250,
// and so did those of the records after it. The replay took it for a
// torn tail, dropped it and everything after it, and said only
// "dropped a record cut short at its end (never acknowledged)" at info
// level: three served messages gone without a trace. It must be
// reported as corrupt and the segment kept in quarantine, as a damaged
// record anywhere else is.
func TestRevDur3LengthPastEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		which int // the record (after the header) whose length is damaged
	}{
		{"middle", 0},
		{"last", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, b, off := revDur3Segment(t)
			for range tc.which {
				off += recHeadLen + int(binary.BigEndian.Uint32(b[off+4:]))
			}
			b[off+5] ^= 0x08 // one bit: the length grows by 512 KiB, past the end
			os.WriteFile(path, b, 0o640)

			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatal(err)
			}
			if rep.TornTails != 0 || len(rep.CorruptJournals) != 1 {
				t.Errorf("Recover = %+v; want the damaged record reported corrupt, not dropped as a torn tail", rep)
			}
			if q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "journal-*")); len(q) != 1 {
				t.Errorf("quarantined journal copies %v; want the segment's", q)
			}
		})
	}
}

// TestRevDur3TornTailStaysQuiet: a record genuinely cut short (the write
// a kill interrupted), even one whose content holds bytes shaped as
// records, is still dropped quietly as a torn tail.
func TestRevDur3TornTailStaysQuiet(t *testing.T) {
	inner := (&record{typ: recDone, id: "6B0252D2F906FEFF"}).marshal()
	rec := (&record{typ: recAccepted, id: "6B0252D2F906FEFE", state: Ready, envelope: []byte("e"),
		content: append(append([]byte("Subject: x\r\n\r\n"), inner...), "tail\r\n"...)}).marshal()
	for cut := recHeadLen; cut < len(rec); cut++ {
		_, err := readRecord(bufio.NewReader(bytes.NewReader(rec[:cut])), -1)
		if err != errCutShort {
			t.Fatalf("cut at %d of %d: err = %v; want cut short", cut, len(rec), err)
		}
	}
}

// TestRevDur3CorruptSegmentCopyFails: the replay stops at a corrupt
// record and keeps the segment in quarantine, the only copy of what
// follows the damage (served messages have nothing else). The copy was
// written with its error ignored, and the segment removed after the
// replay all the same: on a full disk (here, a file in the quarantine
// directory's way: a copy never replaces another, so a file of the copy's
// name is no obstacle) the records after the damage were gone, while the
// log said the segment was kept in quarantine. The segment must stay
// somewhere a person can find it.
func TestRevDur3CorruptSegmentCopyFails(t *testing.T) {
	dir, path, b, off := revDur3Segment(t)
	seg := filepath.Base(path)
	b[off+recHeadLen+20] ^= 0x01 // inside the first message's record: its CRC fails
	os.WriteFile(path, b, 0o640)
	q := filepath.Join(dir, quarantineDir, "journal-"+seg)

	s2, _ := Open(dir, nil)
	qdir := filepath.Join(dir, quarantineDir)
	if err := os.RemoveAll(qdir); err != nil || os.WriteFile(qdir, nil, 0o640) != nil {
		t.Fatalf("cannot put a file in the quarantine's place: %v", err)
	}
	rep, _ := s2.Recover()
	if len(rep.CorruptJournals) != 1 {
		t.Errorf("Recover = %+v; want the corrupt segment reported", rep)
	}
	kept := false
	for _, p := range []string{path, q} {
		if got, err := os.ReadFile(p); err == nil && string(got) == string(b) {
			kept = true
		}
	}
	if !kept {
		matches, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		t.Errorf("the corrupt segment is gone: neither %s nor %s holds it (files: %v)", path, q, matches)
	}
}

// TestRevDur3CorruptSegmentKeptForRoom: a corrupt segment, on a disk too
// full both to copy it into quarantine and to write out a message it
// serves, stays for that message; once there is room the message is
// written out and the segment goes, but into quarantine, not away: what
// follows its damage is nowhere else.
func TestRevDur3CorruptSegmentKeptForRoom(t *testing.T) {
	dir, path, b, off := revDur3Segment(t)
	seg := filepath.Base(path)
	stuck := string(b[off+recHeadLen+2 : off+recHeadLen+2+int(b[off+recHeadLen+1])]) // the first message's id
	for range 2 {
		off += recHeadLen + int(binary.BigEndian.Uint32(b[off+4:]))
	}
	b[off+recHeadLen+20] ^= 0x01 // inside the third message's record
	os.WriteFile(path, b, 0o640)
	obstacle := filepath.Join(dir, "."+stuck+".content")
	if err := os.MkdirAll(obstacle, 0o750); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	// No copy can be written in quarantine: a file in its place (a copy
	// never replaces another, so a file of its name is no obstacle).
	qdir := filepath.Join(dir, quarantineDir)
	if err := os.RemoveAll(qdir); err != nil || os.WriteFile(qdir, nil, 0o640) != nil {
		t.Fatalf("cannot put a file in the quarantine's place: %v", err)
	}
	if _, err := s2.Replay(); err == nil {
		t.Fatalf("Replay with %s unwritable = nil; want an error", stuck)
	}
	os.RemoveAll(obstacle)
	if err := os.Remove(qdir); err != nil || os.Mkdir(qdir, 0o750) != nil {
		t.Fatalf("cannot put the quarantine back: %v", err)
	}
	s2.List() // the retry, now that there is room
	if _, st, err := s2.Read(stuck); err != nil || st != Ready {
		t.Errorf("Read(%s) after room was made = %v, %v; want it ready", stuck, st, err)
	}
	kept := false
	for _, p := range []string{path, filepath.Join(dir, quarantineDir, "journal-"+seg)} {
		if got, err := os.ReadFile(p); err == nil && string(got) == string(b) {
			kept = true
		}
	}
	if !kept {
		t.Errorf("the corrupt segment is gone once the message it kept was written")
	}
}

// TestRevDur3ForeignReceiptUnderWay: E-MailRelay (or emailrelay-submit)
// sharing the spool creates a message's content file when the
// transaction starts and writes it as the data comes, then the envelope
// as .new, renames it into place and says 250; it takes no lock. A
// relaykeeper starting meanwhile (a restart after a kill) quarantined the
// content file as "content without envelope": E-MailRelay went on writing
// into it there through its descriptor, put its envelope in the spool and
// acknowledged the message, which was then never delivered (its envelope
// quarantined as torn at the next start). A young file of a message named
// by another program is left alone; an old one is quarantined as before.
func TestRevDur3ForeignReceiptUnderWay(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	young, youngNew, old := "emailrelay.4242.1764982800.7", "emailrelay.4242.1764982800.8", "emailrelay.4242.1764982800.9"
	for _, id := range []string{young, youngNew, old} {
		os.WriteFile(s.contentPath(id), []byte("Subject: in progress\r\n"), 0o640)
	}
	os.WriteFile(s.envelopePath(youngNew, New), testEnvelope().Marshal(), 0o640)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(s.contentPath(old), past, past)

	rep, err := s.RecoverFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{young, youngNew} {
		if _, err := os.Stat(s.contentPath(id)); err != nil || slices.Contains(rep.Quarantined, id) {
			t.Errorf("%s, a receipt another program may have under way, was quarantined (%v): %+v", id, err, rep)
		}
	}
	if !slices.Contains(rep.Quarantined, old) {
		t.Errorf("%s, a content file two hours old with no envelope, was not quarantined: %+v", old, rep)
	}
	// The writer finishes: the message is there to deliver.
	os.WriteFile(s.envelopePath(young, Ready), testEnvelope().Marshal(), 0o640)
	if _, st, err := s.Read(young); err != nil || st != Ready {
		t.Errorf("Read(%s) = %v, %v; want ready", young, st, err)
	}
}

// TestRevDur3QuotedBlankRoundTrip: a recipient whose quoted local part
// has a blank ("john smith"@example.net, which the server accepts, and
// canonical maps keep, giving it ORCPT=rfc822;"john smith"@...) is
// written into the envelope's status, Dsn, Remote-MTA and In-Reply-To
// lines, each cut at its first blank when read back: after the envelope
// went to its file (a deferral, a checkpoint, a restart) the recipient
// had lost its status (a failed one became pending and was tried again,
// another notice to the sender), its NOTIFY and its ORCPT.
func TestRevDur3QuotedBlankRoundTrip(t *testing.T) {
	e := testEnvelope()
	e.Recipients = []Recipient{
		{Addr: `"sent to"@example.org`, Status: Sent, Reply: "250 2.0.0 ok"}, // the sent ones are read first
		{Addr: `"john smith"@example.net`, Status: Bounced, Reply: "550 5.1.1 no such user",
			Notify: "FAILURE", ORCPT: `rfc822;"john smith"@old.example`, InReplyTo: "RCPT TO", RemoteMTA: "mx.example.net[192.0.2.25]"},
		{Addr: `"a \" b"@example.net`, Status: Deferred, Reply: "451 4.3.0 later", ORCPT: "rfc822;x@old.example"},
		{Addr: "plain@example.org", Status: Pending, Notify: "NEVER"},
	}
	got, err := Unmarshal(bytes.NewReader(e.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.Recipients, got.Recipients); diff != "" {
		t.Errorf("recipients read back differ (-written +read):\n%s", diff)
	}
	// Written by hand, in the other order.
	hand := strings.Replace(string(e.Marshal()), "X-Relaykeeper-Dsn: plain@example.org NOTIFY=NEVER",
		`X-Relaykeeper-Dsn: plain@example.org ORCPT=rfc822;"p q"@old.example NOTIFY=NEVER`, 1)
	got, err = Unmarshal(strings.NewReader(hand))
	if r := got.Recipients[len(got.Recipients)-1]; err != nil || r.Notify != "NEVER" || r.ORCPT != `rfc822;"p q"@old.example` {
		t.Errorf("hand-written Dsn line read as %+v, %v", r, err)
	}
}

// TestRevDur3EveryBitFlip flips one bit in every byte of each record's
// head (magic, type, length, CRC), and in a few of its payload, in a
// segment that serves three messages: each replay must either restore all
// three or report the segment corrupt (and keep it in quarantine); none
// may drop a record quietly as a torn tail.
func TestRevDur3EveryBitFlip(t *testing.T) {
	_, _, orig, _ := revDur3Segment(t)
	var offsets []int
	for at := 0; at < len(orig); at += recHeadLen + int(binary.BigEndian.Uint32(orig[at+4:])) {
		for i := range recHeadLen + 3 {
			offsets = append(offsets, at+i)
		}
	}
	offsets = append(offsets, len(orig)-1)
	for _, off := range offsets {
		dir, path, b, _ := revDur3Segment(t) // its own ids, the same layout
		b[off] ^= 1 << (off % 8)
		os.WriteFile(path, b, 0o640)
		s2, _ := Open(dir, nil)
		rep, _ := s2.Recover()
		switch {
		case len(rep.CorruptJournals) == 1:
			if q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "journal-*")); len(q) != 1 {
				t.Errorf("bit flip at %d: reported corrupt, but no copy in quarantine", off)
			}
		case rep.Ready == 3 && rep.TornTails == 0:
		default:
			t.Errorf("bit flip at %d: %+v; want three restored or the segment reported corrupt", off, rep)
		}
	}
}
