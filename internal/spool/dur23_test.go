package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestDur23EmptiedContentRestoredSameBoot: the spool's file system failed
// under the relay (ext4 with errors=remount-ro turned read-only on an I/O
// error), was checked and mounted again, and the relay started, all under
// one boot. A message served from the journal and written out by a
// checkpoint (or a deferral) before the failure has its files back with
// their names, but its content empty: the dirty pages went with the failed
// mount. Replayed as "this boot, the files are as the process left them",
// the empty content was kept and then quarantined as torn: a message the
// client heard 250 for was never delivered (seen with bin/relaykeeper,
// TestDur23FileSystemAbortUnderLoad: 23 of 170 lost). The record has the
// content: an empty content file is written again from it.
func TestDur23EmptiedContentRestoredSameBoot(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "6B0252D2F906FE64"
	content := []byte("Received: from x\r\nSubject: kept\r\n\r\nbody\r\n")
	env := testEnvelope().Marshal()
	// What the failed mount left: the names, the envelope (its own
	// rewrite was synced), no content.
	dur23Leave(t, s, id, env, content, nil)
	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined) != 0 {
		t.Fatalf("quarantined %v (%v); want the message restored from its record", rep.Quarantined, rep.Reasons)
	}
	got, err := os.ReadFile(s.contentPath(id))
	if err != nil || string(got) != string(content) {
		t.Fatalf("content after recovery = %q, %v; want the record's %q", got, err, content)
	}
	if _, err := os.Stat(s.envelopePath(id, Ready)); err != nil {
		t.Errorf("envelope: %v; want it ready", err)
	}
}

// TestDur23RemountedSpoolCheckedAgainstJournal: the same as above, the
// content cut short rather than empty (background write-back had written
// its first pages before the file system failed). The journal's header
// named the boot only, so the start after the file system was mounted
// again took the files as the dead process left them and delivered half
// a message. The header names the mount too (cacheEpoch): a segment
// written under another mount is checked file by file against its
// records, as after a power loss. A bind mount stands in for the new
// mount.
func TestDur23RemountedSpoolCheckedAgainstJournal(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "root, for a bind mount")
	}
	base := t.TempDir()
	dir, again := filepath.Join(base, "spool"), filepath.Join(base, "again")
	os.Mkdir(dir, 0o750)
	os.Mkdir(again, 0o750)
	if err := unix.Mount(dir, again, "", unix.MS_BIND, ""); err != nil {
		harness.Missing(t, "a bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(again, 0) })
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "6B0252D2F906FE64"
	content := []byte("Received: from x\r\nSubject: kept\r\n\r\n" + strings.Repeat("body\r\n", 2000))
	env := testEnvelope().Marshal()
	dur23Leave(t, s, id, env, content, content[:4096])
	s2, err := Open(again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recover(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s2.contentPath(id))
	if err != nil || string(got) != string(content) {
		t.Fatalf("content after recovery on the new mount: %d octets, %v; want the record's %d", len(got), err, len(content))
	}
}

// dur23Leave leaves in s what a relay killed after a failed mount leaves:
// a journal segment of s's epoch with id's record, served from memory,
// its ready envelope, and left for its content.
func dur23Leave(t *testing.T, s *Spool, id string, env, content, left []byte) {
	t.Helper()
	os.MkdirAll(filepath.Join(s.dir, journalDir), 0o750)
	seg := (&record{typ: recHeader, boot: s.boot}).marshal()
	seg = append(seg, (&record{typ: recServed, id: id, state: Ready, envelope: env, content: content}).marshal()...)
	for path, b := range map[string][]byte{
		filepath.Join(s.dir, journalDir, "00000000000000000001.log"): seg,
		s.contentPath(id):         left,
		s.envelopePath(id, Ready): env,
	} {
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
