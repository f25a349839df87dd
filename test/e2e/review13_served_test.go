package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview13ServedFullDiskKill: with forwarding on disconnection, the
// messages of a session still open are served from the daemon's memory,
// their journal records the only copy. The disk fills up before a
// checkpoint can write them out; a message sent then hears 452 (or a 250
// that is kept); the relay is killed and started again on the still full
// disk, then once more after space was freed. Every acknowledged message
// must reach the upstream: none may be lost with the journal that a start
// on a full disk could not replay.
func TestReview13ServedFullDiskKill(t *testing.T) {
	t.Parallel()
	img, mnt := loopDisk(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := filepath.Join(mnt, "spool")
	r := startRelayWith(t, "127.0.0.1", "unshare", "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount -o loop '%s' '%s' && exec "$0" "$@"`, img, mnt), harness.Binary(t),
		"--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--spool-dir", spool)
	view := func() string { return fmt.Sprintf("/proc/%d/root", r.current().PID()) }
	filler := filepath.Join(mnt, "filler")
	fill(t, view()+filler)
	// Room for the journal, and little more.
	if err := os.Truncate(view()+filler, fileSize(t, view()+filler)-2<<20); err != nil {
		t.Fatal(err)
	}
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var acked []string
	for i := range 6 {
		from := fmt.Sprintf("full%d@example.org", i)
		if _, err := c.send(from, []string{"bob@example.net"}, message(from)); err != nil {
			t.Fatalf("%s with room on the disk: %v", from, err)
		}
		acked = append(acked, from)
	}
	// Full before the next checkpoint.
	fill(t, view()+filler+"2")
	tx, err := c.send("late@example.org", []string{"bob@example.net"}, message("late"))
	switch {
	case err == nil:
		acked = append(acked, "late@example.org")
	case !strings.HasPrefix(tx.Final.String(), "452 "):
		t.Errorf("a message on a full disk: %+v, %v; want 250 or 452 after the dot", tx, err)
	}
	time.Sleep(2500 * time.Millisecond) // checkpoints fail meanwhile
	t.Logf("spool before the kill: %v", spoolFiles(t, view()+spool))
	r.kill()
	r.restart() // on the disk, still full
	time.Sleep(1500 * time.Millisecond)
	t.Logf("spool after a start on a full disk: %v", spoolFiles(t, view()+spool))
	os.Remove(view() + filler + "2")
	os.Remove(view() + filler)
	r.stop(20 * time.Second)
	r.restart()
	if !waitFor(30*time.Second, func() bool {
		for _, from := range acked {
			if acceptedFrom(up, from) == 0 {
				return false
			}
		}
		return true
	}) {
		for _, from := range acked {
			if acceptedFrom(up, from) == 0 {
				t.Errorf("%s: acknowledged, never delivered (lost)", from)
			}
		}
		t.Logf("spool now: %v", spoolFiles(t, view()+spool))
		for _, p := range r.procs {
			for _, l := range strings.Split(p.Stderr(), "\n") {
				if strings.Contains(l, "journal") || strings.Contains(l, "recover") || strings.Contains(l, "restor") {
					t.Logf("log: %s", l)
				}
			}
		}
	}
	if q, _ := os.ReadDir(view() + filepath.Join(spool, ".quarantine")); len(q) > 0 {
		t.Errorf("quarantined: %d files", len(q))
	}
}
