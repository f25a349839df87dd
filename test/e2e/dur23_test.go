package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
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
		// The test's own processes may hold it a moment longer: bounded
		// retries, then a lazy unmount, never a mount left behind.
		var out []byte
		var err error
		for range 20 {
			if out, err = exec.Command("umount", "-d", mnt).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		exec.Command("umount", "-l", "-d", mnt).Run()
		t.Errorf("umount %s: %v: %s", mnt, err, out)
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

// dur23Delivered finds the Subject tag of each accepted transaction, counted.
func dur23Delivered(fake *harness.FakeSMTP) map[string]int {
	got := map[string]int{}
	for _, tx := range fake.Transactions() {
		if !tx.Accepted() {
			continue
		}
		if m := dur23SubjectRE.FindStringSubmatch(string(tx.Data)); m != nil {
			got[m[1]]++
		} else {
			got["?"+string(tx.Data)]++
		}
	}
	return got
}

var dur23SubjectRE = regexp.MustCompile(`(?m)^Subject: (dur23-\S+)\r?$`)

// TestDur23HandDamagedSpool damages a stopped relay's spool by hand in
// every way the brief of recovery names, and starts it again: the whole
// messages are delivered, each damaged one is set aside and reported
// (the log and "queue quarantine"), none is delivered in part, no file
// outside the spool is read or changed through a planted link, and the
// relay starts and keeps running.
func TestDur23HandDamagedSpool(t *testing.T) {
	var up atomic.Bool
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageEndOfData && !up.Load() {
			return harness.Response{Reply: "451 4.3.0 not yet"}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	args := []string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", spool, "--forward-to", fake.Addr(),
		"--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, "")}
	r := startRelay(t, "127.0.0.1", args...)
	names := []string{"whole", "torn-envelope", "no-envelope", "no-content", "link-envelope", "link-content", "huge-envelope", "foreign-owner", "empty-segment"}
	ids := map[string]string{}
	for _, name := range names {
		tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("dur23-"+name))
		if err != nil {
			t.Fatalf("send %s: %v %v", name, tx, err)
		}
		ids[name] = strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
	}
	// Each tried once and deferred: its files are written.
	waitFor(20*time.Second, func() bool { return len(fake.Transactions()) >= len(names) })
	r.stop(20 * time.Second)
	path := func(name, suffix string) string { return filepath.Join(spool, ids[name]+suffix) }
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("Subject: dur23-secret\r\n\r\nnot the spool's\r\n"), 0o644)
	passwd := filepath.Join(outside, "passwd")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644)

	env, err := os.ReadFile(path("torn-envelope", ".envelope"))
	if err != nil {
		t.Fatalf("the deferred message has no ready envelope: %v; spool %v", err, spoolFiles(t, spool))
	}
	// Cut in the middle of the recipient's line: a truncated line, and
	// no End line after it.
	cut := bytes.Index(env, []byte("To-Remote: bob@exa")) + len("To-Remote: bob@exa")
	os.WriteFile(path("torn-envelope", ".envelope"), env[:cut], 0o640)
	os.Remove(path("no-envelope", ".envelope"))
	os.Remove(path("no-content", ".content"))
	os.Remove(path("link-envelope", ".envelope"))
	os.Symlink(passwd, path("link-envelope", ".envelope"))
	os.Remove(path("link-content", ".content"))
	os.Symlink(secret, path("link-content", ".content"))
	huge := append(bytes.TrimSuffix(env, []byte("\r\n")), []byte("\r\nX-Dur23: "+strings.Repeat("h", 20<<20)+"\r\n")...)
	os.WriteFile(path("huge-envelope", ".envelope"), huge, 0o640)
	for _, p := range []string{path("foreign-owner", ".envelope"), path("foreign-owner", ".content")} {
		os.Chown(p, 65534, 65534)
		os.Chmod(p, 0o600)
	}
	os.WriteFile(filepath.Join(spool, ".journal", "00000000000000000007.log"), nil, 0o640)

	up.Store(true)
	r.restart()
	want := map[string]bool{"whole": true, "foreign-owner": true, "empty-segment": true}
	waitFor(30*time.Second, func() bool {
		got := dur23Delivered(fake)
		for name := range want {
			if got["dur23-"+name] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second) // a poll or two more: nothing else goes
	got := dur23Delivered(fake)
	for _, name := range names {
		switch n := got["dur23-"+name]; {
		case want[name] && n == 0:
			t.Errorf("%s: not delivered", name)
		case !want[name] && n > 0 && name != "no-envelope":
			t.Errorf("%s: delivered %d times; want it set aside", name, n)
		}
	}
	for tag := range got {
		if !strings.HasPrefix(tag, "dur23-") {
			t.Errorf("the upstream got a message that is no whole one of ours: %.200q", tag)
		}
	}
	if !r.current().Running() {
		t.Fatalf("the relay died:\n%s", r.stderr())
	}
	out, _, code := runBinary(t, harness.Binary(t), "", "queue", "quarantine", "--spool-dir", spool)
	t.Logf("queue quarantine (exit %d):\n%s", code, out)
	for _, name := range []string{"torn-envelope", "no-envelope", "no-content", "link-envelope", "link-content", "huge-envelope"} {
		if !strings.Contains(out, ids[name]) {
			t.Errorf("%s (%s) not reported by queue quarantine", name, ids[name])
		}
		if !strings.Contains(r.stderr(), "quarantine id="+ids[name]) {
			t.Errorf("%s (%s): no quarantine line in the mail log", name, ids[name])
		}
	}
	if b, _ := os.ReadFile(passwd); string(b) != "root:x:0:0:root:/root:/bin/bash\n" {
		t.Errorf("the link's target outside the spool changed: %q", b)
	}
	if _, err := os.Lstat(secret); err != nil {
		t.Errorf("the content link's target outside the spool: %v", err)
	}
	for _, line := range strings.Split(r.stderr(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "quarantine") {
			t.Log(line)
		}
	}
	r.stop(20 * time.Second)
}

// TestDur23JournalGarbageInTheMiddle kills the relay while the messages
// it serves from the journal are stalled at the upstream, so that they
// are in a journal segment only, and writes garbage into the middle of
// that segment (one record's content), not its tail. The start after
// must deliver the messages recorded before the damage, deliver nothing
// in part, report the damage in the log and keep the segment and the
// messages after it in quarantine, listed by "queue quarantine".
func TestDur23JournalGarbageInTheMiddle(t *testing.T) {
	var up atomic.Bool
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageEndOfData && !up.Load() {
			return harness.Response{Delay: 30 * time.Second}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, "connections = 1\n"))
	const n = 6
	for i := range n {
		if tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("dur23-seg-%d", i))); err != nil {
			t.Fatalf("send %d: %v %v", i, tx, err)
		}
	}
	r.kill()
	segs, _ := filepath.Glob(filepath.Join(spool, ".journal", "*.log"))
	var seg string
	var data []byte
	for _, p := range segs {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("dur23-seg-3")) {
			seg, data = p, b
		}
	}
	if seg == "" {
		t.Fatalf("no journal segment holds dur23-seg-3 after the kill (a checkpoint came first?); segments %v, spool %v", segs, spoolFiles(t, spool))
	}
	at := bytes.Index(data, []byte("Body of dur23-seg-3"))
	copy(data[at:], "GARBAGE GARBAGE")
	os.WriteFile(seg, data, 0o640)
	up.Store(true)
	r.restart()
	waitFor(20*time.Second, func() bool {
		got := dur23Delivered(fake)
		return got["dur23-seg-0"] > 0 && got["dur23-seg-1"] > 0 && got["dur23-seg-2"] > 0
	})
	time.Sleep(3 * time.Second)
	got := dur23Delivered(fake)
	t.Logf("delivered %v", got)
	for i := range n {
		tag := fmt.Sprintf("dur23-seg-%d", i)
		if i < 3 && got[tag] == 0 {
			t.Errorf("%s, recorded before the damage, not delivered", tag)
		}
	}
	for tag := range got {
		if !strings.HasPrefix(tag, "dur23-") {
			t.Errorf("delivered something that is no whole message: %.200q", tag)
		}
	}
	for _, tx := range fake.Transactions() {
		if tx.Accepted() && bytes.Contains(tx.Data, []byte("GARBAGE")) {
			t.Errorf("the damaged record was delivered: %.300q", tx.Data)
		}
	}
	out, _, _ := runBinary(t, harness.Binary(t), "", "queue", "quarantine", "--spool-dir", spool)
	t.Logf("queue quarantine:\n%s", out)
	if !strings.Contains(out, "journal segment journal-"+filepath.Base(seg)) {
		t.Errorf("queue quarantine does not name the damaged segment")
	}
	for _, line := range strings.Split(r.stderr(), "\n") {
		if strings.Contains(line, "journal") || strings.Contains(line, "quarantine") || strings.Contains(line, "salvag") {
			t.Log(line)
		}
	}
	if !strings.Contains(r.stderr(), "unreadable record") {
		t.Errorf("the damage is not reported in the log")
	}
	r.stop(20 * time.Second)
}

// TestDur23FullTmpfsStalledUpstreamKill: a 2 MB tmpfs spool, an upstream
// that takes each message but never answers its dot, and the disk filled
// by someone else once the relay has acknowledged what it could: the
// checkpoints cannot write out what the journal serves. The relay must
// answer 452 rather than 250 past its room, not spin, and after a kill,
// with the room back, deliver every message it acknowledged.
func TestDur23FullTmpfsStalledUpstreamKill(t *testing.T) {
	if os.Geteuid() != 0 {
		needFor(t, "a tmpfs spool", fmt.Errorf("needs root"))
	}
	mnt, err := os.MkdirTemp("/var/tmp", "dur23-enospc")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "dur23", mnt).CombinedOutput(); err != nil {
		needFor(t, "a tmpfs", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() {
		exec.Command("umount", mnt).Run()
		os.Remove(mnt)
	})
	var up atomic.Bool
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageEndOfData && !up.Load() {
			return harness.Response{Delay: 60 * time.Second}
		}
		return harness.Response{}
	}})
	spool := filepath.Join(mnt, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, "connections = 2\n"))
	acked := map[string]string{}
	var refused []string
	for i := range 60 {
		tag := fmt.Sprintf("crash-tag-%06d", i)
		tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, revDur2Body(tag, 300))
		switch {
		case err == nil:
			acked[tag] = strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
		case lastCode(tx)/100 == 4:
			refused = append(refused, fmt.Sprintf("%d", lastCode(tx)))
		default:
			t.Fatalf("message %d: %v, %v; want 250 or 4xx", i, tx, err)
		}
	}
	fill(t, filepath.Join(mnt, "filler"))
	pid := r.current().PID()
	c0 := cpuTicks(pid)
	time.Sleep(4 * time.Second)
	if d := cpuTicks(pid) - c0; d > 200 {
		t.Errorf("the relay used %d ticks of CPU in 4 s on a full disk; want it idle", d)
	}
	t.Logf("%d acknowledged, refused %v", len(acked), refused)
	r.kill()
	os.Remove(filepath.Join(mnt, "filler"))
	up.Store(true)
	r.restart()
	delivered := revDur2Delivered(t, fake, acked, spool)
	t.Logf("%d delivered", len(delivered))
	for _, line := range strings.Split(r.stderr(), "\n") {
		if strings.Contains(line, "checkpoint") || strings.Contains(line, "could not be written") {
			t.Log(line)
		}
	}
	r.stop(20 * time.Second)
}
