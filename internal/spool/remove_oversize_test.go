package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveUnreadableOversize: an envelope past maxEnvelope never
// parses (no read of it ever succeeds: readEnvelopeFile refuses it before
// Unmarshal), and recovery quarantines it, but since f1f83a9 queue delete
// refuses to remove it: its error is not a *ParseError.
func TestRemoveUnreadableOversize(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: big\r\n\r\nbody\r\n")
	os.WriteFile(filepath.Join(dir, id+".envelope"), bytes.Repeat([]byte("X-Junk: y\n"), maxEnvelope/10+1), 0o644)
	if st, err := s.RemoveUnreadable(id); err != nil {
		t.Errorf("RemoveUnreadable(oversize envelope) = %v, %v; want it removed as a torn one is", st, err)
	}
}
