package spool

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevOps2RootKeepsSpoolOwner: the relay runs as its own user
// (relaykeeper, etc/relaykeeper.service); docs/queue.md says to run the
// queue commands as that user "or root", and docs/sendmail.md that root's
// sendmail (cron) writes into the spool. A root "queue hold", "release" or
// "retry" rewrote the envelope through a temporary file root created, and
// root's "submit" made both files, so they were root:root 0640: the relay
// could not read them, never delivered the message, and quarantined it at
// its next start ("permission denied"). Root gives the files it makes the
// spool directory's owner.
func TestRevOps2RootKeepsSpoolOwner(t *testing.T) {
	_, s, owned := ownedSpool(t)
	owned("made by root's Open", quarantineDir)
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	owned("submitted by root", id+".content")
	owned("submitted by root", id+".envelope")
	for _, to := range []State{Held, Ready} {
		c, err := s.Lock(id)
		if err != nil {
			t.Fatal(err)
		}
		c.Env.LastReply = "changed by an administrator"
		if err := c.Move(to); err != nil {
			t.Fatal(err)
		}
		owned("moved by root", id+stateSuffix[to])
	}
}

// ownedSpool opens, as root, a spool in a directory owned by nobody, as
// the relay's own user; owned reports a file in it that root did not give
// that owner.
func ownedSpool(t *testing.T) (dir string, s *Spool, owned func(what, name string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		harness.Missing(t, "needs root to give files to another user")
	}
	dir = t.TempDir()
	const uid, gid = 65534, 65534 // nobody, as the relay's own user
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	owned = func(what, name string) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: %s is owned by %d:%d; want %d:%d (the spool's, the relay's user)",
				what, name, st.Uid, st.Gid, uid, gid)
		}
	}
	return dir, s, owned
}

// TestRevOps2RecoverLeavesForeignFiles: E-MailRelay's user guide starts a
// server with "--spool-dir /tmp", and relaykeeper takes its command lines
// as written. Recovery removed every "*.tmp" file there older than an hour,
// whoever's, and every hidden "*.content" nobody locked: in /tmp, other
// programs' files. It removes only what the spool's own writers leave:
// "NAME.RANDOM.tmp" of a spool file NAME (safefile's temporary name), and
// the hidden ".ID.content" and ".ID.envelope" of a message id it makes.
func TestRevOps2RecoverLeavesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	old := time.Now().Add(-2 * time.Hour)
	foreign := []string{"report.tmp", "vim-swap.content.tmp", "build.12345.tmp", ".session.content", ".profile.envelope"}
	ours := []string{id + ".envelope.123456789.tmp", ".6B02BD20916D36F7.content",
		".6B02BD20916D36F8.envelope"}
	for _, n := range append(append([]string{}, foreign...), ours...) {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	if _, err := s.RecoverFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range foreign {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("recovery removed %s, a file that is not the spool's: %v", n, err)
		}
	}
	for _, n := range ours {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("recovery left %s, a spool writer's leftover", n)
		}
	}
	if _, st, err := s.Read(id); err != nil || st != Ready {
		t.Errorf("the message: %v %v", st, err)
	}
}
