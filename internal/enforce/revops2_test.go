package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevOps2RootBansKeepOwner: the relay runs as its own user; an
// administrator runs "sudo relaykeeper bans add IP". The ban file, its
// lock file and a .enforce directory that root made were root:root 0640,
// so the relay logged "ban list not reloaded ... permission denied", never
// enforced that ban, and could not record its own bans any more. Root
// gives them the owner of the directory they are in.
func TestRevOps2RootBansKeepOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "needs root to give files to another user")
	}
	spoolDir := t.TempDir()
	const uid, gid = 65534, 65534 // nobody, as the relay's own user
	if err := os.Chown(spoolDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(spoolDir, ".enforce", "bans")
	b, err := OpenBansByHand(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(netip.MustParseAddr("192.0.2.9"), time.Hour, "by hand"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(path), path, path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s is owned by %d:%d after root's bans add; want %d:%d (the spool's, the relay's user)",
				p, st.Uid, st.Gid, uid, gid)
		}
	}
}
