package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dur23Mount mounts a 16 MB ext4 image (loopDisk) with errors=remount-ro
// and returns the mount point and its loop device's name (loop1); the
// cleanup unmounts it.
func dur23Mount(t *testing.T) (img, mnt, dev string) {
	t.Helper()
	img, mnt = loopDisk(t)
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-d", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == mnt {
			dev = filepath.Base(f[0])
		}
	}
	if dev == "" {
		t.Fatalf("%s is not in /proc/self/mounts", mnt)
	}
	return img, mnt, dev
}

// cpuTicks is a process's user and system time, in clock ticks.
func cpuTicks(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var u, k int
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &k)
	return u + k
}

// TestDur23FileSystemAbortUnderLoad makes the spool's file system fail
// under load the way ext4 does on an I/O error (errors=remount-ro: the
// journal aborts, the file system turns read-only under the relay) while
// the upstream defers half the messages, so that some are served from
// memory and some have files. The relay must answer 451 (never 250) from
// then on, neither crash nor spin; once the file system is checked and
// mounted again and the relay restarted, every acknowledged message must
// be delivered whole.
func TestDur23FileSystemAbortUnderLoad(t *testing.T) {
	img, mnt, dev := dur23Mount(t)
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 100, 50, 0)
	spool := filepath.Join(mnt, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, ""))
	var n atomic.Int64
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		if n.Add(1)%4 == 0 {
			return revDur2Body(tag, 2000) // a scratch file, then the record
		}
		return revDur2Body(tag, 20)
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(3, stop, &wg)
	time.Sleep(2 * time.Second)
	if err := os.WriteFile("/sys/fs/ext4/"+dev+"/trigger_fs_error", []byte("dur23\n"), 0); err != nil {
		needFor(t, "ext4's trigger_fs_error", err)
	}
	sender.mu.Lock()
	before := len(sender.acked)
	sender.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	sender.mu.Lock()
	atAbort := len(sender.acked)
	sender.mu.Unlock()
	pid := r.current().PID()
	c0 := cpuTicks(pid)
	time.Sleep(3 * time.Second)
	c1 := cpuTicks(pid)
	sender.mu.Lock()
	after := len(sender.acked)
	sender.mu.Unlock()
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	if after != atAbort {
		t.Errorf("%d messages acknowledged on a read-only file system; want none", after-atAbort)
	}
	if !r.current().Running() {
		t.Fatalf("the relay died on a read-only spool:\n%s", r.stderr())
	}
	// The relay answers, and does not spin: 3 s at most 1.5 s of CPU.
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	c.Close()
	if d := c1 - c0; d > 150 {
		t.Errorf("the relay used %d ticks of CPU in 3 s on a read-only spool; want it idle", d)
	}
	t.Logf("acknowledged: %d before the abort, %d within 0.5 s of it, %d after", before, atAbort-before, after-atAbort)

	// The administrator's repair: stop, fsck, mount again, start.
	r.kill()
	if out, err := exec.Command("umount", "-d", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	exec.Command("e2fsck", "-fy", img).Run()
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount again: %v: %s", err, out)
	}
	healthy.Store(true)
	r.restart()
	acked := sender.acknowledged(t, 10)
	delivered := revDur2Delivered(t, fake, acked, spool)
	t.Logf("%d acknowledged, %d delivered; quarantined %v", len(acked), len(delivered), quarantined(t, spool))
	r.stop(20 * time.Second)
}
