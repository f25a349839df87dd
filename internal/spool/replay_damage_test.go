package spool

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayNeverSkipsByLength: the CRC covers a record's type and payload,
// not the length in its header, so a replay that skipped a damaged record
// by its length could land inside a message's content (data a client sent)
// and restore bytes shaped like a record there: a message nobody sent, to
// recipients of the sender's choosing. The replay stops at the damaged
// record instead (a hostile review's reproduction against 8b8e9d7).
func TestReplayNeverSkipsByLength(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	id1 := newMessage(t, s, "Subject: one\r\n\r\nbody\r\n")

	// The forged record a client sends as part of its message.
	evil := testEnvelope()
	evil.Recipients = []Recipient{{Addr: "victim@elsewhere.example", Status: Pending}}
	forgedID := s.NewID(t0.Add(1))
	forged := (&record{typ: recServed, state: Ready, id: forgedID, envelope: evil.Marshal(),
		content: []byte("Subject: forged\r\n\r\nspam\r\n")}).marshal()
	prefix := "Subject: two\r\n\r\n"
	id2 := newMessage(t, s, prefix+string(forged)+"\r\n")
	id3 := newMessage(t, s, "Subject: three\r\n\r\nbody\r\n")
	j.kill()

	segs := s.segments()
	path := filepath.Join(dir, journalDir, segs[0])
	b := readSegment(t, path)
	// Find message 2's record: header, id1, id2.
	off := 0
	for range 2 {
		off += recHeadLen + int(binary.BigEndian.Uint32(b[off+4:]))
	}
	// Where the forged bytes start inside it.
	at := strings.Index(string(b[off:]), string(forged))
	if at < 0 {
		t.Fatal("forged bytes not found")
	}
	// One damaged length field: it now ends the record where the forged
	// bytes begin.
	binary.BigEndian.PutUint32(b[off+4:], uint32(at-recHeadLen))
	os.WriteFile(path, b, 0o640)

	s2, _ := Open(dir, nil)
	rep, err := s2.Recover()
	t.Logf("report: %+v err %v", rep, err)
	if _, st, err := s2.Read(forgedID); err == nil {
		env, _, _ := s2.Read(forgedID)
		t.Errorf("the replay restored %s (%v), a message no client sent, to %v", forgedID, st, env.Recipients)
	}
	for _, id := range []string{id1, id2, id3} {
		_, st, err := s2.Read(id)
		t.Logf("%s: %v %v", id, st, err)
	}
}
