package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLo28QuarantineCopiesNotOverwritten: a journal segment's name is
// its number, counted from the clock at the journal's start, so after the
// clock stepped back a later segment can bear an earlier one's name. The
// copy of its torn tail (journal-SEGMENT.torn-OFFSET), or of the whole
// segment when it is corrupt (journal-SEGMENT), was then written over the
// earlier copy, the only trace of the message it held. Each copy now gets
// a name of its own (NAME.2, ...), and the same octets replayed again
// (a segment read at two starts) are not copied twice.
func TestLo28QuarantineCopiesNotOverwritten(t *testing.T) {
	for _, tc := range []struct {
		what string
		// damage spoils the segment b, whose records start at offs, as
		// the second copy's differs from the first by the octet at the
		// returned offset; name is the copy's name.
		damage func(b []byte, offs []int) int
		name   func(dir, path string, offs []int) string
	}{
		{"torn tail", func(b []byte, offs []int) int {
			from := (offs[2] + recHeadLen + 511) / 512 * 512
			end := offs[2] + recHeadLen + int(binary.BigEndian.Uint32(b[offs[2]+4:]))
			clear(b[from:end])
			return from - 1
		}, func(dir, path string, offs []int) string {
			return fmt.Sprintf("%s.torn-%d", journalQuarantine(dir, path), offs[2])
		}},
		{"corrupt segment", func(b []byte, offs []int) int {
			at := offs[1] + recHeadLen + 20
			b[at] ^= 0x20
			return at + 1
		}, func(dir, path string, offs []int) string { return journalQuarantine(dir, path) }},
	} {
		t.Run(tc.what, func(t *testing.T) {
			dir, path, b, offs := preallocSegment(t)
			if len(offs) != 3 {
				t.Fatalf("%d records; want 3", len(offs))
			}
			first := bytes.Clone(b)
			at := tc.damage(first, offs)
			second := bytes.Clone(first)
			second[at] ^= 0x01
			q := tc.name(dir, path, offs)
			var want [][]byte
			for i, seg := range [][]byte{first, second, second} {
				if err := os.WriteFile(path, seg, 0o640); err != nil {
					t.Fatal(err)
				}
				s, _ := Open(dir, nil)
				if _, err := s.Recover(); err != nil {
					t.Fatalf("start %d: Recover: %v", i+1, err)
				}
				if _, err := os.Stat(path); err == nil {
					t.Fatalf("start %d: the segment is still in the journal", i+1)
				}
				if i < 2 {
					want = append(want, seg)
				}
			}
			des, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
			var names []string
			for _, de := range des {
				if strings.HasPrefix(de.Name(), "journal-") { // not the messages salvaged
					names = append(names, de.Name())
				}
			}
			for i, name := range []string{q, q + ".2"} {
				got, err := os.ReadFile(name)
				if err != nil {
					t.Errorf("copy %d: %v; quarantine holds %v", i+1, err, names)
					continue
				}
				if !bytes.Contains(want[i], bytes.TrimRight(got, "\x00")) || tc.what != "torn tail" && !bytes.Equal(got, want[i]) {
					t.Errorf("copy %d (%s) does not hold start %d's octets", i+1, filepath.Base(name), i+1)
				}
			}
			if len(names) != 2 {
				t.Errorf("quarantine holds %v; want the two copies, the third start's being the second's", names)
			}
		})
	}
}
