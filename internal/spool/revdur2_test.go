package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayRetriedWhenRoom: served messages of a killed process that the
// replay at start cannot write out (here a directory in the way of one's
// hidden content file, as a full disk would refuse it) are written by the
// running process's checkpoints once they can be, and only they: a message
// the replay did restore, delivered since, does not come back. Before,
// they stayed in the kept segment until the next start, acknowledged and
// never delivered. The retry comes with the journal's checkpoints and with
// the scheduler's scans (List), for a daemon that could not open its
// journal on the full disk.
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
	s2.List() // a scan, with or without a journal (this process has none)
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

// TestClaimContentAfterFilterEdits: the size a claim keeps from its lock's
// fstat never outlives a change by whoever was given the path: a client
// filter that appends in place, truncates in place, or replaces the file,
// for a message in files and for one served from memory.
func TestClaimContentAfterFilterEdits(t *testing.T) {
	edits := map[string]func(path string) string{
		"append": func(p string) string {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("appended by the filter\r\n")
			f.Close()
			b, _ := os.ReadFile(p)
			return string(b)
		},
		"truncate": func(p string) string {
			os.Truncate(p, 5)
			b, _ := os.ReadFile(p)
			return string(b)
		},
		"replace": func(p string) string {
			want := "Subject: replaced\r\n\r\n" + strings.Repeat("r", 20000) + "\r\n"
			os.WriteFile(p+".new", []byte(want), 0o640)
			os.Rename(p+".new", p)
			return want
		},
	}
	for name, edit := range edits {
		for _, served := range []bool{false, true} {
			s, _ := Open(t.TempDir(), nil)
			if served {
				serve(t, s)
			}
			id := newMessage(t, s, "Subject: original\r\n\r\nbody\r\n")
			c, err := s.Claim(id)
			if err != nil {
				t.Fatal(err)
			}
			readContent(t, c) // the size is known now
			p, err := c.ContentPath()
			if err != nil {
				t.Fatal(err)
			}
			want := edit(p)
			if err := c.Relock(); err != nil {
				t.Fatal(err)
			}
			if got := readContent(t, c); got != want {
				t.Errorf("%s (served %v): Content after the edit = %d bytes; want the %d the filter left", name, served, len(got), len(want))
			}
			c.Unlock()
		}
	}
}
