package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Power losses (dur25Disk's method) on a relay whose journal segments are
// filled with zeros when made and overwritten by records: every message
// acknowledged before the copy must be delivered whole from it.

func TestRev26PowerLossOneSession(t *testing.T) {
	rev26PowerLosses(t, "", 1, 0, []time.Duration{400, 650, 900, 1300, 1700, 2100})
}

func TestRev26PowerLossTwentySessions(t *testing.T) {
	rev26PowerLosses(t, "", 20, 0, []time.Duration{400, 650, 900, 1300, 1700, 2100})
}

func TestRev26PowerLossDataJournal(t *testing.T) {
	rev26PowerLosses(t, ",data=journal", 20, 0, []time.Duration{500, 900, 1300, 1700})
}

// TestRev26PowerLossFullDisk: a disk with too little room for a new
// segment's zeros (the segments fall back to appending, and some sessions
// hear 452).
func TestRev26PowerLossFullDisk(t *testing.T) {
	rev26PowerLosses(t, "", 8, 3, []time.Duration{600, 1100, 1600, 2100})
}

// rev26PowerLosses loads a relay with sessions senders, with all but
// ballast MB of the 64 MB disk taken if ballast > 0, and takes a power
// loss after each pause.
func rev26PowerLosses(t *testing.T, opts string, sessions, ballast int, pauses []time.Duration) {
	d := newDur25Disk(t, opts)
	if ballast > 0 {
		// all but ballast MB of the free space taken
		var st syscall.Statfs_t
		if err := syscall.Statfs(d.mnt, &st); err != nil {
			t.Fatal(err)
		}
		size := int64(st.Bavail)*st.Bsize - int64(ballast)<<20
		if out, err := exec.Command("fallocate", "-l", fmt.Sprint(size), filepath.Join(d.mnt, "ballast")).CombinedOutput(); err != nil {
			t.Fatalf("fallocate: %v: %s", err, out)
		}
		out, _ := exec.Command("df", "-k", d.mnt).CombinedOutput()
		t.Logf("%s", out)
	}
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 100, 50, 5)
	r := dur25Relay(t, filepath.Join(d.mnt, "spool"), fake.Addr())
	var n atomic.Int64
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		switch n.Add(1) % 8 {
		case 3:
			return revDur2Body(tag, 2000)
		case 5:
			// 600 NUL octets before the last line
			b := revDur2Body(tag, 20)
			end := strings.LastIndex(b, "End-Of ")
			return b[:end] + strings.Repeat("\x00", 600) + "\n" + b[end:]
		case 7:
			return revDur2Body(tag, 16000)
		}
		return revDur2Body(tag, 20)
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(sessions, stop, &wg)
	snaps := d.powerLosses(r.current().PID(), pauses, fake, sender)
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	r.kill()
	total, owedAll := 0, 0
	for i, s := range snaps {
		t.Run(fmt.Sprintf("snapshot%d", i), func(t *testing.T) {
			spool := filepath.Join(d.reboot(s.img), "spool")
			var segs []string
			ents, _ := os.ReadDir(filepath.Join(spool, ".journal"))
			for _, e := range ents {
				if fi, err := e.Info(); err == nil {
					segs = append(segs, fmt.Sprintf("%s %d", e.Name(), fi.Size()))
				}
			}
			df, _ := exec.Command("df", "-k", "--output=used,avail", spool).CombinedOutput()
			t.Logf("segments: %v; %s", segs, strings.Join(strings.Fields(string(df)), " "))
			up := harness.NewFakeSMTP(t, harness.Script{})
			sr := dur25Relay(t, spool, up.Addr())
			owed := map[string]string{}
			for tag, id := range s.acked {
				if !s.delivered[tag] {
					owed[tag] = id
				}
			}
			total += len(s.acked)
			owedAll += len(owed)
			delivered := revDur2Delivered(t, up, owed, spool)
			if left := revDur2Left(t, spool); len(left) > 0 {
				t.Errorf("the spool still holds %v", left)
			}
			t.Logf("acknowledged: %d, not yet delivered: %d; delivered after: %d", len(s.acked), len(owed), len(delivered))
			out, _, _ := opsCmd(t, "", "queue", "quarantine", "--spool-dir", spool)
			if strings.Contains(out, "journal") {
				t.Logf("queue quarantine:\n%s", out)
			}
			sr.stop(20 * time.Second)
			if t.Failed() || !strings.Contains(sr.stderr(), "corrupt_journals=0") || strings.Contains(sr.stderr(), "unreadable record") {
				t.Logf("stderr:\n%s", lastLines(sr.stderr(), 40))
			}
		})
	}
	t.Logf("%d power losses, %d acknowledgements checked, %d of them owed", len(snaps), total, owedAll)
}
