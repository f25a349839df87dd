package e2e

import (
	"bytes"
	"fmt"
	"maps"
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

// The power losses are simulated without device-mapper (no dm-flakey on
// this kernel): the spool is an ext4 loop mount; at chosen instants the
// relay is stopped (SIGSTOP) and the image file is copied: the copy holds
// what the loop device had been given, which is everything the relay
// synced and none of the ext4 page cache, the disk after a power loss.
// Every 250 the relay had sent was sent before the stop. Each copy is
// mounted on its own (a new mount: the replay checks every file against
// the journal, as after a reboot).

// dur25Disk is a 64 MB ext4 image in dir, mounted on dir/mnt with opts
// (and "loop"); the cleanup unmounts it unless the test did.
type dur25Disk struct {
	t        *testing.T
	dir, img string
	mnt      string
	mounted  bool
}

func newDur25Disk(t *testing.T, opts string) *dur25Disk {
	t.Helper()
	if os.Geteuid() != 0 {
		needFor(t, "a loop-mounted spool", fmt.Errorf("needs root"))
	}
	dir := t.TempDir()
	d := &dur25Disk{t: t, dir: dir, img: filepath.Join(dir, "disk.img"), mnt: filepath.Join(dir, "mnt")}
	os.Mkdir(d.mnt, 0o755)
	if out, err := exec.Command("sh", "-c", "truncate -s 64M "+d.img+" && mkfs.ext4 -q -F -m 0 "+d.img).CombinedOutput(); err != nil {
		needFor(t, "mkfs.ext4", fmt.Errorf("%v: %s", err, out))
	}
	dur25Mount(t, d.img, d.mnt, opts)
	d.mounted = true
	t.Cleanup(func() {
		if d.mounted {
			dur25Umount(t, d.mnt)
		}
	})
	return d
}

func dur25Mount(t *testing.T, img, mnt, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "loop"+opts, img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", img, err, out)
	}
}

func dur25Umount(t *testing.T, mnt string) {
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
}

// powerLoss copies the image as a power loss would leave the disk now,
// with the relay pid stopped (SIGSTOP) meanwhile: the copy holds what the
// loop device had been given, everything synced and none of the ext4 page
// cache. Every 250 the relay has sent, it sent before the copy. seen
// runs while the relay is stopped, to note what was settled by then.
func (d *dur25Disk) powerLoss(pid int, name string, seen func()) string {
	d.t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		d.t.Fatalf("SIGSTOP: %v", err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	// A system call under way when the signal came ends first.
	time.Sleep(50 * time.Millisecond)
	snap := filepath.Join(d.dir, name+".img")
	if out, err := exec.Command("cp", "--sparse=always", d.img, snap).CombinedOutput(); err != nil {
		d.t.Fatalf("copy the image: %v: %s", err, out)
	}
	if seen != nil {
		seen()
	}
	return snap
}

// reboot mounts a power loss's image on a directory of its own (a new
// mount, as after a reboot) and returns it; the cleanup unmounts it.
func (d *dur25Disk) reboot(snap string) string {
	d.t.Helper()
	mnt := strings.TrimSuffix(snap, ".img")
	os.Mkdir(mnt, 0o755)
	dur25Mount(d.t, snap, mnt, "")
	d.t.Cleanup(func() { dur25Umount(d.t, mnt) })
	return mnt
}

// dur25Relay starts a store-and-forward relay on spool, forwarding to up.
func dur25Relay(t *testing.T, spool, up string, extra ...string) *relay {
	t.Helper()
	args := []string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", up, "--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, "")}
	return startRelay(t, "127.0.0.1", append(args, extra...)...)
}

// TestDur25PowerLossSnapshot simulates power losses on a loaded relay
// (dur25Disk.powerLoss: no device-mapper here for dm-flakey) at five
// instants; each copy is then mounted on its own and a relay started on
// it: every message acknowledged before the copy and not yet accepted
// upstream must be delivered, whole.
func TestDur25PowerLossSnapshot(t *testing.T) {
	dur25PowerLosses(t, "", []time.Duration{700, 1300, 1900, 2300, 3100})
}

// TestDur25PowerLossFilters is TestDur25PowerLossSnapshot with a server
// filter and a client filter that rewrite every message's content in
// place, on a disk without ext4's auto_da_alloc heuristic.
func TestDur25PowerLossFilters(t *testing.T) {
	// The filter's own temporary file is outside the spool: one that a
	// power loss leaves behind is not the relay's to remove.
	rewrite := `o=$(mktemp) && cp "$1" "$o" && { printf 'X-Dur25: yes\r\n'; cat "$o"; } > "$1"; rm -f "$o"
exit 0
`
	dur25PowerLosses(t, ",noauto_da_alloc", []time.Duration{900, 1700, 2500},
		"--filter", script(t, "server", rewrite), "--client-filter", script(t, "client", rewrite))
}

// dur25Snapshot is one power loss: the copied image, every 250 the relay
// had sent by then (tag -> id), and the tags the upstream had accepted.
type dur25Snapshot struct {
	img       string
	acked     map[string]string
	delivered map[string]bool
}

// powerLosses takes a power loss of the relay pid after each pause, noting
// what was acknowledged and delivered at that moment.
func (d *dur25Disk) powerLosses(pid int, pauses []time.Duration, fake *harness.FakeSMTP, sender *tagSender) []dur25Snapshot {
	var snaps []dur25Snapshot
	for i, pause := range pauses {
		time.Sleep(pause * time.Millisecond)
		var s dur25Snapshot
		s.img = d.powerLoss(pid, fmt.Sprintf("snap%d", i), func() {
			s.delivered = map[string]bool{}
			for _, tx := range fake.Transactions() {
				if tag, ok := revDur2Whole(tx.Data); ok && tx.Accepted() {
					s.delivered[tag] = true
				}
			}
			sender.mu.Lock()
			s.acked = maps.Clone(sender.acked)
			sender.mu.Unlock()
		})
		snaps = append(snaps, s)
	}
	return snaps
}

// dur25PowerLosses loads a relay run with extra switches, forwarding to a
// flaky upstream, with a power loss after each pause; each is then
// restarted and checked.
func dur25PowerLosses(t *testing.T, opts string, pauses []time.Duration, extra ...string) {
	d := newDur25Disk(t, opts)
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 100, 50, 5)
	r := dur25Relay(t, filepath.Join(d.mnt, "spool"), fake.Addr(), extra...)
	var n atomic.Int64
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		switch n.Add(1) % 8 {
		case 3:
			return revDur2Body(tag, 2000) // a scratch file, then its record
		case 7:
			return revDur2Body(tag, 16000) // over 1 MiB: the classic path
		}
		return revDur2Body(tag, 20) // served from memory
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(3, stop, &wg)

	snaps := d.powerLosses(r.current().PID(), pauses, fake, sender)
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	r.kill()

	total := 0
	for i, s := range snaps {
		t.Run(fmt.Sprintf("snapshot%d", i), func(t *testing.T) {
			spool := filepath.Join(d.reboot(s.img), "spool")
			up := harness.NewFakeSMTP(t, harness.Script{})
			sr := dur25Relay(t, spool, up.Addr())
			owed := map[string]string{}
			for tag, id := range s.acked {
				if !s.delivered[tag] {
					owed[tag] = id
				}
			}
			total += len(s.acked)
			delivered := revDur2Delivered(t, up, owed, spool)
			if left := revDur2Left(t, spool); len(left) > 0 {
				t.Errorf("the spool still holds %v", left)
			}
			t.Logf("acknowledged before the power loss: %d, of which %d not yet delivered; delivered after: %d",
				len(s.acked), len(owed), len(delivered))
			out, _, _ := opsCmd(t, "", "queue", "quarantine", "--spool-dir", spool)
			t.Logf("queue quarantine:\n%s", out)
			sr.stop(20 * time.Second)
			if t.Failed() {
				t.Logf("stderr:\n%s", lastLines(sr.stderr(), 60))
			}
		})
	}
	t.Logf("%d power losses, %d acknowledgements checked", len(snaps), total)
}

// TestDur25FilterEditsSyncedBeforeAck: a server filter (--filter) that
// rewrites the content in place, as a signing filter does, on a message
// that takes the classic path (over 1 MiB: no journal record). The
// client hears 250, then the power goes. The content the filter wrote
// must be on the disk: the classic path fsynced the content before the
// filter ran and only the directory after it, so the filter's data was in
// the page cache alone, and after the power loss the content file was
// empty (quarantined, never delivered) or as before the filter.
// (noauto_da_alloc: ext4's heuristic that starts writing back a file
// truncated and rewritten is not a sync, and other file systems have
// none.)
func TestDur25FilterEditsSyncedBeforeAck(t *testing.T) {
	d := newDur25Disk(t, ",noauto_da_alloc")
	held := dur25Deferring(t)
	filter := script(t, "sign", `cp "$1" "$1.orig" && { printf 'X-Dur25-Signed: yes\r\n'; cat "$1.orig"; } > "$1" && rm -f "$1.orig"
printf 'X-Dur25-Filter-Note: seen\r\n' >> "$2"
exit 0
`)
	r := dur25Relay(t, filepath.Join(d.mnt, "spool"), held.Addr(), "--filter", filter)
	acked := dur25SendFour(t, r)
	snap := d.powerLoss(r.current().PID(), "snap", nil)
	r.kill()

	dur25Restart(t, d, snap, acked, func(up *harness.FakeSMTP) {
		for _, tx := range up.Transactions() {
			if tag, ok := revDur2Whole(tx.Data); ok && !bytes.Contains(tx.Data, []byte("X-Dur25-Signed: yes\r\n")) {
				t.Errorf("%s delivered without the header its filter added before the 250", tag)
			}
		}
	})
}

// TestDur25ClientFilterEditsSynced: a client filter (--client-filter)
// that rewrites a queued message's content in place, then a deferral,
// then a power loss. The message was acknowledged long before; what the
// relay keeps of it after its filter ran must still be a message: the
// content the filter wrote was never fsynced (the deferral fsyncs only the
// envelope and the directory), and after the power loss it was empty, the
// message quarantined, not delivered.
func TestDur25ClientFilterEditsSynced(t *testing.T) {
	d := newDur25Disk(t, ",noauto_da_alloc")
	held := dur25Deferring(t)
	filter := script(t, "client-sign", `cp "$1" "$1.orig" && { printf 'X-Dur25-Client: yes\r\n'; cat "$1.orig"; } > "$1" && rm -f "$1.orig"
exit 0
`)
	r := dur25Relay(t, filepath.Join(d.mnt, "spool"), held.Addr(), "--client-filter", filter)
	acked := dur25SendFour(t, r)
	if !waitFor(20*time.Second, func() bool { return len(held.Transactions()) >= len(acked) }) {
		t.Fatalf("the upstream saw %d attempts; want %d", len(held.Transactions()), len(acked))
	}
	time.Sleep(200 * time.Millisecond) // the deferrals recorded
	snap := d.powerLoss(r.current().PID(), "snap", nil)
	r.kill()

	dur25Restart(t, d, snap, acked, nil)
}

// TestDur25ClientFilterCutShort: the power goes while a client filter
// rewrites a queued message's content in place (it has truncated the file
// and written part of it). The message was acknowledged seconds before
// (its journal record retired); it must come back whole after the
// restart, as it was accepted, not be quarantined as empty or sent cut
// short.
func TestDur25ClientFilterCutShort(t *testing.T) {
	for _, lines := range []int{20, 16000} {
		t.Run(fmt.Sprint(lines), func(t *testing.T) {
			d := newDur25Disk(t, ",noauto_da_alloc")
			up0 := harness.NewFakeSMTP(t, harness.Script{})
			// The fsync of another file commits the file system's
			// journal, with the truncation in it, as the relay's own
			// syncs do under load; the content's new data stays in the
			// page cache.
			filter := script(t, "client-slow", `printf 'X-Dur25: half' > "$1"
dd if=/dev/zero of="$(dirname "$1")/../other" bs=512 count=1 conv=fsync 2>/dev/null
sleep 6
exit 0
`)
			r := dur25Relay(t, filepath.Join(d.mnt, "spool"), up0.Addr(), "--client-filter", filter)
			tag := "crash-tag-000001"
			tx, err := sendMail(r.addr(), "tagger@example.org", []string{"crash@example.net"}, revDur2Body(tag, lines))
			if err != nil {
				t.Fatalf("%s: %v %v", tag, err, tx)
			}
			acked := map[string]string{tag: strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")}
			time.Sleep(4 * time.Second) // the journal retired; the filter asleep
			snap := d.powerLoss(r.current().PID(), "snap", nil)
			r.kill()
			if n := len(up0.Transactions()); n > 0 {
				t.Fatalf("forwarded before the power loss; want it in its filter")
			}

			spool := filepath.Join(d.reboot(snap), "spool")
			if testing.Verbose() {
				out, _ := exec.Command("ls", "-la", spool, spool+"/.journal").CombinedOutput()
				t.Logf("the spool after the power loss:\n%s", out)
			}
			up := harness.NewFakeSMTP(t, harness.Script{})
			sr := dur25Relay(t, spool, up.Addr())
			revDur2Delivered(t, up, acked, spool)
			out, _, _ := opsCmd(t, "", "queue", "quarantine", "--spool-dir", spool)
			t.Logf("queue quarantine:\n%s", out)
			sr.stop(20 * time.Second)
			if t.Failed() {
				t.Logf("stderr:\n%s", lastLines(sr.stderr(), 40))
			}
			time.Sleep(3 * time.Second) // the filter, orphaned, ends before the unmount
		})
	}
}

// TestDur25ClientFilterFaults injects faults (strace) into a relay whose
// client filter rewrites every message in place, where the guard is made,
// synced and removed (GuardContent, Relock): whatever fails, every
// acknowledged message reaches the upstream after a kill and a restart
// without faults, whole.
func TestDur25ClientFilterFaults(t *testing.T) {
	needStrace(t)
	filter := script(t, "client", `cp "$1" "$1.orig" && { printf 'X-Dur25: yes\r\n'; cat "$1.orig"; } > "$1" && rm -f "$1.orig"
exit 0
`)
	var cases []faultCase
	for _, when := range []int{1, 2, 3} {
		cases = append(cases, faultCase{syscall: "fsync", action: "error=EIO", when: when},
			faultCase{syscall: "renameat,renameat2", action: "error=ENOSPC", when: when},
			faultCase{syscall: "fsync", action: "signal=KILL", when: when})
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			var mu sync.Mutex
			tried := map[string]bool{}
			up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
				m := dur19TagRE.FindSubmatch(tx.Data)
				if stage != harness.StageEndOfData || m == nil {
					return harness.Response{}
				}
				mu.Lock()
				defer mu.Unlock()
				if !tried[string(m[1])] {
					tried[string(m[1])] = true
					return harness.Response{Reply: "451 4.3.0 first try deferred"}
				}
				return harness.Response{}
			}})
			args := []string{"--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
				"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n"), "--interface", "127.0.0.1", "--spool-dir", spool}
			r := startRelay(t, "127.0.0.1", append(args, "--client-filter", filter)...)
			st := attachStrace(t, r.current().PID(), c, filepath.Join(t.TempDir(), "strace.log"))
			s := dur19Send(t, r.addr(), "dur19-cf-"+c.name(), 4, r.current().Running)
			waitFor(4*time.Second, func() bool { return !r.current().Running() || len(up.Transactions()) >= 2*len(s.acked) })
			if r.current().Running() {
				r.kill()
			} else {
				r.current().Wait(5 * time.Second)
			}
			st.Wait()
			clean := &relay{t: t, bin: harness.Binary(t), args: args, host: "127.0.0.1", port: r.port, spool: spool}
			clean.restart()
			checkDelivered(t, s, up, spool)
			if t.Failed() {
				t.Logf("codes %v; stderr:\n%s\n--- clean:\n%s", s.codes, lastLines(r.stderr(), 40), lastLines(clean.stderr(), 40))
			}
			clean.stop(15 * time.Second)
		})
	}
}

// dur25Deferring is an upstream that defers every message at its final dot.
func dur25Deferring(t *testing.T) *harness.FakeSMTP {
	return harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData {
			return harness.Response{Reply: "451 4.3.0 not now"}
		}
		return harness.Response{}
	}})
}

// dur25SendFour sends four tagged messages through r, every other one over
// 1 MiB (the classic path), and returns tag -> the id each 250 gave.
func dur25SendFour(t *testing.T, r *relay) map[string]string {
	t.Helper()
	acked := map[string]string{}
	for i := range 4 {
		tag := fmt.Sprintf("crash-tag-%06d", i)
		body := revDur2Body(tag, 20)
		if i%2 == 1 {
			body = revDur2Body(tag, 16000)
		}
		tx, err := sendMail(r.addr(), "tagger@example.org", []string{"crash@example.net"}, body)
		if err != nil {
			t.Fatalf("%s: %v %v", tag, err, tx)
		}
		acked[tag] = strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
	}
	return acked
}

// dur25Restart mounts the power loss's copy snap, starts a relay on it
// toward a new upstream, and checks that every acked message is delivered
// whole (and check, if not nil, on what the upstream got).
func dur25Restart(t *testing.T, d *dur25Disk, snap string, acked map[string]string, check func(*harness.FakeSMTP)) {
	t.Helper()
	spool := filepath.Join(d.reboot(snap), "spool")
	up := harness.NewFakeSMTP(t, harness.Script{})
	sr := dur25Relay(t, spool, up.Addr())
	revDur2Delivered(t, up, acked, spool)
	if check != nil {
		check(up)
	}
	out, _, _ := opsCmd(t, "", "queue", "quarantine", "--spool-dir", spool)
	t.Logf("queue quarantine:\n%s", out)
	sr.stop(20 * time.Second)
	if t.Failed() {
		t.Logf("stderr:\n%s", lastLines(sr.stderr(), 40))
	}
}
