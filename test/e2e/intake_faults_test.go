package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// needFor skips a test that lacks something the machine must provide, or
// fails it under CI, where everything must be there.
func needFor(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	harness.Missing(t, "%s: %v", what, err)
}

// TestIntakeFullDisk runs the relay with its spool on a small ext4 loop
// mount in a mount namespace of its own. With the disk full, messages are
// refused with 452 4.3.1 after their final dot, never a 5xx, and nothing of
// them stays in the spool; once space is freed, the same session sends
// them again and they are accepted, without a restart.
func TestIntakeFullDisk(t *testing.T) {
	t.Parallel()
	img, mnt := loopDisk(t)
	// A mount namespace of its own: the loop mount is seen by the relay
	// only, and goes when it exits. The test reaches it through
	// /proc/PID/root.
	spool := filepath.Join(mnt, "spool")
	r := startRelayOnLoop(t, img, mnt, "--as-server", "--interface", "127.0.0.1", "--size", "0", "--spool-dir", spool)
	view := fmt.Sprintf("/proc/%d/root", r.current().PID())
	seen := view + spool
	if _, err := os.Stat(seen); err != nil {
		t.Fatalf("the relay's spool on the loop mount, seen from outside: %v", err)
	}
	// Fill the file system, then free 300 KB: room for small messages,
	// none for big ones.
	filler := view + filepath.Join(mnt, "filler")
	fillLeaving(t, filler, 300<<10)

	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	sizes := []int{2 << 10, 150 << 10, 600 << 10, 2 << 20, 5 << 20}
	var refused []int
	accepted := 0
	for _, size := range sizes {
		tx, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(size))
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, errRefused) && strings.HasPrefix(tx.Final.String(), "452 4.3.1 "):
			refused = append(refused, size)
		default:
			t.Fatalf("a %d-octet message on a full disk: %+v, %v; want 250 or 452 4.3.1 after the dot", size, tx, err)
		}
		checkWhole(t, seen, accepted)
	}
	if len(refused) == 0 {
		t.Fatalf("no message refused on a full disk; want 452 4.3.1 for the big ones")
	}
	// Completely full: not even a small message.
	fill(t, filler+"2")
	tx, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(100))
	if !errors.Is(err, errRefused) || !strings.HasPrefix(tx.Final.String(), "452 4.3.1 ") {
		t.Errorf("a small message on a disk with no space left: %+v, %v; want 452 4.3.1", tx, err)
	}
	checkWhole(t, seen, accepted)

	// Space again: the same session, the same relay.
	os.Remove(filler)
	os.Remove(filler + "2")
	for _, size := range refused {
		if _, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(size)); err != nil {
			t.Errorf("a %d-octet message after space was freed: %v; want 250", size, err)
		} else {
			accepted++
		}
	}
	checkWhole(t, seen, accepted)
	n452 := 0
	for _, e := range r.events("reject") {
		if strings.HasPrefix(e.Get("reply"), "452 4.3.1 ") {
			n452++
		}
	}
	if n452 != len(refused)+1 {
		t.Errorf("mail log has %d rejects with 452 4.3.1; want %d, one per refused message", n452, len(refused)+1)
	}
	t.Logf("full disk: sizes %v, refused %v, %d accepted in all", sizes, refused, accepted)
}

// loopDisk makes a 16 MB ext4 image and an empty mount point for it; the
// relay mounts it in a mount namespace of its own (unshare -m).
func loopDisk(t *testing.T) (img, mnt string) {
	t.Helper()
	if os.Geteuid() != 0 {
		needFor(t, "a loop-mounted spool", errors.New("needs root"))
	}
	for _, tool := range []string{"unshare", "mkfs.ext4", "mount"} {
		_, err := exec.LookPath(tool)
		needFor(t, "a loop-mounted spool", err)
	}
	dir := t.TempDir()
	img, mnt = filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("sh", "-c", "truncate -s 16M "+img+" && mkfs.ext4 -q -F -m 0 "+img).CombinedOutput(); err != nil {
		needFor(t, "mkfs.ext4", fmt.Errorf("%v: %s", err, out))
	}
	return img, mnt
}

// startRelayOnLoop starts the relay in a mount namespace of its own, in
// which the loop image img is mounted on mnt (loopDisk): the mount is
// seen by the relay only, and goes when it exits. A test reaches it
// through /proc/PID/root.
func startRelayOnLoop(t *testing.T, img, mnt string, args ...string) *relay {
	t.Helper()
	return startRelayWith(t, "127.0.0.1", "unshare", append([]string{"-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount -o loop '%s' '%s' && exec "$0" "$@"`, img, mnt), harness.Binary(t)}, args...)...)
}

// fillLeaving fills the file system with path, then frees free octets.
func fillLeaving(t *testing.T, path string, free int64) {
	t.Helper()
	fill(t, path)
	if err := os.Truncate(path, fileSize(t, path)-free); err != nil {
		t.Fatal(err)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if f == nil {
		return
	}
	defer f.Close()
	// Smaller and smaller writes, down to the last free octet.
	for _, size := range []int{64 << 10, 4 << 10, 256, 1} {
		buf := make([]byte, size)
		for range 1 << 14 {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Sync()
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// fullDiskMessage is a message of about size octets, in long lines.
func fullDiskMessage(size int) string {
	return "Subject: full disk " + strconv.Itoa(size) + "\n\n" + strings.Repeat(strings.Repeat("d", 9999)+"\n", size/10000+1)
}

// checkWhole checks that the spool holds exactly n messages, each a
// content file and a ready envelope, and nothing else: no half-written
// file of a refused message.
func checkWhole(t *testing.T, dir string, n int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	contents, envelopes := map[string]bool{}, map[string]bool{}
	var other []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."): // .quarantine, .relaykeeper.pid
		case strings.HasSuffix(name, ".content"):
			contents[strings.TrimSuffix(name, ".content")] = true
		case strings.HasSuffix(name, ".envelope"):
			envelopes[strings.TrimSuffix(name, ".envelope")] = true
		default:
			other = append(other, name)
		}
	}
	if len(other) > 0 || len(contents) != n || len(envelopes) != n {
		t.Errorf("spool holds %d contents, %d envelopes and %q; want %d whole messages and nothing else",
			len(contents), len(envelopes), other, n)
	}
	for id := range contents {
		if !envelopes[id] {
			t.Errorf("spool holds the content of %s without its envelope", id)
		}
	}
}

// longLineMessage is a tagged message with an HTML line of 20-60 KB and a
// base64 line of 30-90 KB, the same for the same tag.
func longLineMessage(tag string) string {
	h := fnv.New64a()
	h.Write([]byte(tag))
	rng := rand.New(rand.NewPCG(h.Sum64(), 7))
	html := "<p>" + strings.Repeat("<b>long line</b> ", 1200+rng.IntN(2400)) + "</p>"
	b64 := strings.Repeat("QUJDRA", 5000+rng.IntN(10000))
	return "From: <tagger@example.org>\r\nSubject: " + tag + "\r\nMessage-ID: <" + tag + "@e2e.test>\r\n" +
		"Date: Sat, 5 Dec 2026 01:00:00 +0000\r\n\r\n" + html + "\r\n" + b64 + "\r\n"
}

// TestIntakeCrashLongLines kills the relay with SIGKILL while senders load
// it with long-line messages, restarting it on the same spool each time.
// Every message acknowledged with 250 reaches the upstream whole.
func TestIntakeCrashLongLines(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: longLineMessage}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(3, stop, &wg)
	const kills = 4
	killLoop(kills, 300*time.Millisecond, 900*time.Millisecond, killRestart(t, r))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	acked := sender.acknowledged(t, 10)
	whole := map[string]bool{}
	waitFor(60*time.Second, func() bool {
		for _, tx := range up.Transactions() {
			if tx.Reply == "" {
				continue
			}
			m := tagRE.FindSubmatch(bytes.ReplaceAll(tx.Data, []byte("\r\n"), []byte("\n")))
			if m == nil {
				continue
			}
			tag := string(m[1])
			if bytes.HasSuffix(tx.Data, []byte(longLineMessage(tag))) {
				whole[tag] = true
			}
		}
		for tag := range acked {
			if !whole[tag] {
				return false
			}
		}
		return true
	})
	var lost []string
	for tag := range acked {
		if !whole[tag] {
			lost = append(lost, tag)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages never reached the upstream whole: %v", len(lost), first(lost, 20))
	}
	t.Logf("%d kills; %d acknowledged, %d sender retries, %d upstream transactions",
		kills, len(acked), sender.retries, len(up.Transactions()))
}
