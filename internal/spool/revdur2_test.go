package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplayRetriedWhenRoom: served messages of a killed process that the
// replay at start cannot write out (here a directory in the way of one's
// hidden content file, as a full disk would refuse it) are written by the
// running process's checkpoints once they can be, and only they: a message
// the replay did restore, delivered since, does not come back. Before,
// they stayed in the kept segment until the next start, acknowledged and
// never delivered.
func TestReplayRetriedWhenRoom(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := serve(t, s)
	stuck := newMessage(t, s, "Subject: stuck\r\n\r\n")
	other := newMessage(t, s, "Subject: other\r\n\r\n")
	j.kill()

	obstacle := filepath.Join(dir, "."+stuck+".content")
	if err := os.Mkdir(obstacle, 0o700); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	if _, err := s2.Replay(); err == nil {
		t.Fatalf("Replay with %s unwritable = nil; want an error", stuck)
	}
	if _, _, err := s2.Read(stuck); err == nil {
		t.Fatalf("%s readable after a replay that could not write it", stuck)
	}
	// The other one was written; it is delivered now.
	c, err := s2.Claim(other)
	if err != nil {
		t.Fatalf("Claim(%s) = %v", other, err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}

	s2.retryReplay() // still no room: nothing changes, nothing is lost
	if _, _, err := s2.Read(stuck); err == nil {
		t.Fatalf("%s readable while its files still cannot be written", stuck)
	}
	if len(s2.segments()) == 0 {
		t.Fatalf("the dead journal's segment was removed while %s is only in it", stuck)
	}

	os.Remove(obstacle)
	s2.retryReplay()
	if _, st, err := s2.Read(stuck); err != nil || st != Ready {
		t.Errorf("Read(%s) after room was made = %v, %v; want it ready", stuck, st, err)
	}
	if got, err := os.ReadFile(s2.contentPath(stuck)); err != nil || string(got) != "Subject: stuck\r\n\r\n" {
		t.Errorf("%s content = %q, %v", stuck, got, err)
	}
	if _, _, err := s2.Read(other); err == nil {
		t.Errorf("%s, delivered after the replay, came back", other)
	}
	if segs := s2.segments(); len(segs) != 0 {
		t.Errorf("segments %v left after every message was written", segs)
	}
}
