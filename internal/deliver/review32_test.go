package deliver

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// fullDiskNotices fails every double bounce the way a full disk does, and
// fills the disk (as the notice's own files would have) first.
type fullDiskNotices struct {
	notices
	fill func()
}

func (n *fullDiskNotices) DoubleBounce(*spool.Envelope, func() (string, error), []spool.Recipient) (bool, error) {
	n.fill()
	return false, errors.New("spool: write content: no space left on device")
}

// TestReview32DoubleBounceFullDisk: 60646a0's double bounce that cannot be
// queued, and whose notice cannot be marked failed (a full disk), logs "it
// stays queued". attempt() then Unlocks the claim, whose Move(Ready) fails
// the same way: the notice is left Claimed, its content locked by a
// descriptor nobody holds. Once there is room again, the next run does not
// see it at all and reports nothing left to deliver.
func TestReview32DoubleBounceFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		skipOrFail(t, "mount tmpfs: "+err.Error())
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	up := startUpstream(t)
	up.set("gone@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	sp, err := spool.Open(filepath.Join(mnt, "spool"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := sp.Create(t0)
	io.WriteString(w, "Subject: Undelivered Mail\r\n\r\nbody\r\n")
	env := &spool.Envelope{From: "", Bounce: true, Arrival: t0, Client: "127.0.0.1:1",
		Recipients: []spool.Recipient{{Addr: "gone@example.net", Status: spool.Pending}}}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	id := w.ID()
	filler := filepath.Join(mnt, "filler")
	ns := &fullDiskNotices{fill: func() {
		f, _ := os.Create(filler)
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
		f.Close()
	}}
	s := New(Options{Spool: sp, Upstream: up.addr, Clock: &fakeClock{now: t0}, Connections: 1,
		MinBackoff: 300 * time.Second, MaxBackoff: 4000 * time.Second, Notices: ns,
		Dial: &remote.Dialer{Options: remote.Options{Helo: "relay.test", ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second}}})
	sum, err := s.RunOnce(context.Background())
	t.Logf("first run (disk full): %v, %v", sum, err)
	os.Remove(filler) // room again
	_, st, err := sp.Read(id)
	if err != nil || st != spool.Ready {
		t.Errorf("after the double bounce failed on a full disk: state %v, %v; want Ready (the log says \"it stays queued\")", st, err)
	}
	sum, _ = s.RunOnce(context.Background())
	if sum.NotDelivered() == 0 {
		t.Errorf("second run, with room again: %v; the notice is still in the spool (%v), untried", sum, st)
	}
}

// skipOrFail skips a test that lacks what the machine must provide, or
// fails it under CI, where everything must be there.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
