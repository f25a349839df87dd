package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box check of the relay from outside (bb26), over loopback to the
// built binary: each case here failed before the fix named in its comment.

// TestBB26FullSpoolStartsAndDrains: a spool that a store-only run
// (--as-server without --forward-to) filled to the last octet, then the
// relay started to forward it. The enforcer's state files (.enforce/
// sender_access, welcomelist) did not exist yet, could not be written, and
// the relay exited at start ("no space left on device"), so the mail it
// had acknowledged stayed stuck until someone freed room by hand. It must
// start, forward, and so make room.
func TestBB26FullSpoolStartsAndDrains(t *testing.T) {
	bb26FullThenDrain(t, "size=1m", "bb26 full", func(mnt string) { fill(t, filepath.Join(mnt, "filler")) })
}

// TestBB26NoInodesStartsAndDrains: a spool whose file system has no inode
// left (many small files, a tmpfs with nr_inodes). The start-up check that
// the spool is writable made a probe file, got ENOSPC, and the relay
// exited ("spool directory ...: not writable: no space left on device"),
// so the mail it had acknowledged could never be forwarded to free room.
// A full spool is writable for that check: the relay starts, forwards,
// and refuses new mail with 452 until there is room. (--no-enforce: the
// enforcer's directory, which this store-only spool never got, needs an
// inode of its own.)
func TestBB26NoInodesStartsAndDrains(t *testing.T) {
	bb26FullThenDrain(t, "size=16m,nr_inodes=64", "bb26 inodes", func(mnt string) {
		for i := range 1000 {
			f, err := os.Create(filepath.Join(mnt, fmt.Sprintf("inode-%d", i)))
			if err != nil {
				break
			}
			f.Close()
		}
	}, "--no-enforce")
}

// bb26FullThenDrain stores a message with a store-only relay on a tmpfs
// mounted with opts, fills the file system with full, and checks that a
// relay started with forwarding (and args) forwards the message.
func bb26FullThenDrain(t *testing.T, opts, subject string, full func(mnt string), args ...string) {
	if os.Geteuid() != 0 {
		needFor(t, "a tmpfs spool", fmt.Errorf("needs root"))
	}
	mnt, err := os.MkdirTemp("/var/tmp", "bb26-full")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "bb26", mnt).CombinedOutput(); err != nil {
		needFor(t, "a tmpfs", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() {
		exec.Command("umount", mnt).Run()
		os.Remove(mnt)
	})
	spool := filepath.Join(mnt, "spool")
	store := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	if _, err := sendMail(store.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: "+subject+"\r\n\r\nkept\r\n"); err != nil {
		t.Fatal(err)
	}
	store.stop(20 * time.Second)
	full(mnt)

	up := harness.NewFakeSMTP(t, harness.Script{})
	fwd := startRelay(t, "127.0.0.1", append([]string{"--as-server", "--forward", "--forward-to", up.Addr(),
		"--interface", "127.0.0.1", "--spool-dir", spool}, args...)...)
	txs := up.WaitTransactions(t, 1, 20*time.Second)
	if !txs[0].Accepted() || !strings.Contains(string(txs[0].Data), "Subject: "+subject) {
		t.Errorf("upstream got %+v; want the stored message", txs[0])
	}
	fwd.stop(20 * time.Second)
}
