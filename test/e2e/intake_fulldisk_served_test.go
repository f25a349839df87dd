package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestIntakeFullDiskServed is TestIntakeFullDisk for a relay that forwards:
// its messages are served from the journal, the larger ones received into
// scratch files (docs/spool.md). With the disk full, a message is refused
// with 452 4.3.1 after its final dot, never a 5xx; every message that was
// acknowledged reaches the upstream once space is back, and the spool ends
// with nothing of any message in it.
func TestIntakeFullDiskServed(t *testing.T) {
	t.Parallel()
	img, mnt := loopDisk(t)
	sink := harness.StartSink(t, harness.SinkOptions{})
	spool := filepath.Join(mnt, "spool")
	r := startRelayOnLoop(t, img, mnt, "--as-server", "--interface", "127.0.0.1", "--size", "0", "--spool-dir", spool,
		"--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1")
	view := fmt.Sprintf("/proc/%d/root", r.current().PID())
	filler := view + filepath.Join(mnt, "filler")
	fillLeaving(t, filler, 300<<10)

	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	// 2 KB in memory; 150 and 600 KB through a scratch file and the
	// journal; 2 MB through its own files.
	sizes := []int{2 << 10, 150 << 10, 600 << 10, 2 << 20}
	acked := map[int]int{}
	var refused []int
	send := func(size int) {
		tx, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(size))
		switch {
		case err == nil:
			acked[size]++
		case errors.Is(err, errRefused) && strings.HasPrefix(tx.Final.String(), "452 4.3.1 "):
			refused = append(refused, size)
		default:
			t.Fatalf("a %d-octet message on a full disk: %+v, %v; want 250 or 452 4.3.1 after the dot", size, tx, err)
		}
	}
	for _, size := range sizes {
		send(size)
	}
	if len(refused) == 0 {
		t.Fatalf("no message refused on a full disk; want 452 4.3.1 for the big ones")
	}
	fill(t, filler+"2")
	for _, size := range sizes[:3] {
		send(size)
	}
	// Space again: the same session, the same relay.
	os.Remove(filler)
	os.Remove(filler + "2")
	again := refused
	refused = nil
	for _, size := range again {
		send(size)
	}
	if len(refused) > 0 {
		t.Errorf("refused %v after space was freed; want all accepted", refused)
	}
	c.Close()

	// Every acknowledged message reaches the sink, whole.
	got := map[int]int{}
	waitFor(60*time.Second, func() bool {
		got = map[int]int{}
		for _, m := range sink.Messages() {
			var size int
			if _, err := fmt.Sscanf(subjectOf(m.Data), "full disk %d", &size); err == nil &&
				strings.Count(m.Data, strings.Repeat("d", 9999)) == size/10000+1 {
				got[size]++
			}
		}
		for size, n := range acked {
			if got[size] < n {
				return false
			}
		}
		return true
	})
	for size, n := range acked {
		if got[size] < n {
			t.Errorf("%d-octet messages: %d acknowledged, %d delivered whole", size, n, got[size])
		}
	}
	seen := view + spool
	waitFor(10*time.Second, func() bool { return len(messageFiles(t, seen)) == 0 })
	if files := messageFiles(t, seen); len(files) != 0 {
		t.Errorf("spool holds %v after everything was delivered; want nothing", files)
		for _, line := range strings.Split(r.stderr(), "\n") {
			if strings.Contains(line, strings.Split(files[0], ".")[0]) || strings.Contains(line, "level=") {
				t.Log(line)
			}
		}
	}
	t.Logf("full disk, forwarding: acknowledged %v, delivered %v, refused while full %d", acked, got, len(again))
}

// messageFiles lists the message files in a spool directory (not the
// hidden ones: the journal, quarantine, the pid file).
func messageFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
