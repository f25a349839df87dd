package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// revDur2Body is a tagged message of lines filler lines, ending in a line
// that names its tag and the number of lines, so that a receiver can tell
// a whole message from a part of one.
func revDur2Body(tag string, lines int) string {
	var b strings.Builder
	b.WriteString(message(tag))
	for i := range lines {
		fmt.Fprintf(&b, "%s line %06d %s\n", tag, i, strings.Repeat("x", 60))
	}
	fmt.Fprintf(&b, "End-Of %s n=%d\n", tag, lines)
	return b.String()
}

var revDur2EndRE = regexp.MustCompile(`(?m)^End-Of (crash-tag-\d+) n=(\d+)\r\n\z`)

// revDur2Whole says whether data is the whole message of its tag.
func revDur2Whole(data []byte) (tag string, ok bool) {
	m := tagRE.FindSubmatch(data)
	if m == nil {
		return "", false
	}
	tag = string(m[1])
	// The end line can only be the last line: match the regexp against it
	// alone. Run over every byte of hundreds of 200 KB messages, as it
	// was, it took the durability tests over ten seconds a check under
	// -race.
	e := revDur2EndRE.FindSubmatch(data[bytes.LastIndexByte(data[:max(len(data)-1, 0)], '\n')+1:])
	if e == nil || string(e[1]) != tag {
		return tag, false
	}
	n, _ := strconv.Atoi(string(e[2]))
	return tag, bytes.Count(data, []byte(tag+" line ")) == n
}

// TestRevDur2KillAheadFlakyUpstream kills the relay with SIGKILL (and
// once stops it with SIGTERM) many times while two clients load it and
// the upstream, which offers PIPELINING so that a batch's next message is
// claimed and begun behind the previous dot, is slow to answer dots and
// refuses or drops some of them. Messages come in three sizes: served
// from memory, from a scratch file and journal record, and on the classic
// path. Then the upstream heals: every acknowledged message must reach it,
// and every transaction it accepted must be one whole message.
func TestRevDur2KillAheadFlakyUpstream(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 300, 12, 5)
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool, "--no-bounces",
		"--config", writeConfig(t, "connections = 3\n[smtp]\nshutdown_grace = \"5s\"\n"))

	var n atomic.Int64
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		switch k := n.Add(1); {
		case k%17 == 0:
			return revDur2Body(tag, 16000) // over 1 MiB: the classic path
		case k%4 == 0:
			return revDur2Body(tag, 2500) // 200 KB: a scratch file, then the record
		default:
			return revDur2Body(tag, 20)
		}
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(3, stop, &wg)
	const kills = 8
	killLoop(kills, 300*time.Millisecond, 1200*time.Millisecond, func(i int) {
		if i == kills/2 {
			r.stop(20 * time.Second)
			t.Logf("stop %d: SIGTERM and restart", i+1)
		} else {
			r.kill()
			t.Logf("kill %d: SIGKILL and restart", i+1)
		}
		r.restart()
	})
	time.Sleep(time.Second)
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	healthy.Store(true)

	acked := sender.acknowledged(t, 30)
	delivered := revDur2Delivered(t, fake, acked, spool)
	dups := 0
	for _, k := range delivered {
		dups += k - 1
	}
	t.Logf("%d acknowledged, %d delivered, %d duplicates, %d sender retries, %d transactions",
		len(acked), len(delivered), dups, sender.retries, len(fake.Transactions()))
	if files := revDur2Left(t, spool); len(files) != 0 {
		t.Errorf("spool still holds %v", files)
	}
	r.stop(20 * time.Second)
}

// revDur2Flaky is an upstream with PIPELINING that, until healthy is set,
// answers each dot only after up to maxDelay ms, defers deferPct % of
// them with a 451 and drops the connection on dropPct % more.
func revDur2Flaky(t *testing.T, healthy *atomic.Bool, maxDelay, deferPct, dropPct int) *harness.FakeSMTP {
	return harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st != harness.StageEndOfData || healthy.Load() {
			return harness.Response{}
		}
		d := time.Duration(rand.N(maxDelay)) * time.Millisecond
		switch p := rand.N(100); {
		case p < deferPct:
			return harness.Response{Reply: "451 4.3.0 try again later", Delay: d}
		case p < deferPct+dropPct:
			return harness.Response{Fault: harness.Close, Delay: d}
		}
		return harness.Response{Delay: d}
	}})
}

// revDur2Delivered waits up to 90 s for every acknowledged message to
// reach the upstream and the spool to empty (revDur2Left), then fails the
// test for each acknowledged message never delivered and each accepted
// transaction that is not one whole message, and logs what recovery
// quarantined. It returns how many times each tag was delivered.
func revDur2Delivered(t *testing.T, fake *harness.FakeSMTP, acked map[string]string, spool string) map[string]int {
	t.Helper()
	var miss, broken []string
	var delivered map[string]int
	waitFor(90*time.Second, func() bool {
		// The spool first: it is cheap to read, and while it holds
		// messages, copying and reading every transaction is wasted.
		if len(revDur2Left(t, spool)) != 0 {
			return false
		}
		miss, delivered, broken = revDur2Check(fake, acked)
		return len(miss) == 0
	})
	miss, delivered, broken = revDur2Check(fake, acked)
	if len(miss) > 0 {
		t.Errorf("%d acknowledged messages never delivered (lost): %v", len(miss), first(miss, 20))
		t.Logf("spool: %v", revDur2Left(t, spool))
	}
	if len(broken) > 0 {
		t.Errorf("the upstream accepted %d transactions that are not one whole message: %v", len(broken), first(broken, 10))
	}
	for _, name := range quarantined(t, spool) {
		t.Logf("quarantined: %s", name)
	}
	return delivered
}

// revDur2Mount mounts a 16 MB ext4 image (loopDisk) on a directory of
// the test's own, and unmounts it when the test ends.
func revDur2Mount(t *testing.T) string {
	t.Helper()
	img, mnt := loopDisk(t)
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", img, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-d", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// revDur2Check compares what the upstream accepted with what the relay
// acknowledged: the tags never delivered ("tag id"), how many times each
// was, and the accepted transactions that are not one whole message.
func revDur2Check(fake *harness.FakeSMTP, acked map[string]string) (miss []string, delivered map[string]int, broken []string) {
	delivered = map[string]int{}
	for _, tx := range fake.Transactions() {
		if !tx.Accepted() {
			continue
		}
		tag, ok := revDur2Whole(tx.Data)
		if !ok {
			broken = append(broken, fmt.Sprintf("%q (%d bytes)", tag, len(tx.Data)))
			continue
		}
		delivered[tag]++
	}
	for tag, id := range acked {
		if delivered[tag] == 0 {
			miss = append(miss, tag+" "+id)
		}
	}
	return miss, delivered, broken
}

// revDur2Left is what the spool holds but for the temporary files of
// receipts cut short by a kill, which recovery removes only once they
// are an hour old (docs/spool.md).
func revDur2Left(t *testing.T, spool string) map[string][]string {
	files := spoolFiles(t, spool)
	for id, sufs := range files {
		keep := sufs[:0]
		for _, s := range sufs {
			if !strings.HasSuffix(s, ".tmp") {
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			delete(files, id)
		} else {
			files[id] = keep
		}
	}
	return files
}

// TestRevDur2TwoRelaysOneSpool runs two relays on one spool, killed in
// turn with SIGKILL while both take mail and deliver it to a flaky
// upstream with PIPELINING, while a third process holds and releases
// acknowledged messages (queue hold, queue release) as they are
// delivered, claimed early or not. Every acknowledged message must be
// delivered whole once all is released and the upstream heals.
func TestRevDur2TwoRelaysOneSpool(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 200, 10, 0)
	spool := t.TempDir()
	cfg := writeConfig(t, "connections = 2\n[smtp]\nshutdown_grace = \"5s\"\n")
	relays := make([]*relay, 2)
	for i := range relays {
		relays[i] = startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
			"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool, "--no-bounces", "--config", cfg)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var n atomic.Int64
	body := func(tag string) string {
		if n.Add(1)%5 == 0 {
			return revDur2Body(tag, 2500)
		}
		return revDur2Body(tag, 20)
	}
	senders := make([]*tagSender, 2)
	for i := range senders {
		// Tags are counted per sender; make them distinct (set before
		// the sender runs: its goroutine reads next under its lock).
		senders[i] = &tagSender{addr: relays[i].addr(), acked: map[string]string{}, body: body, next: i * 500000}
		wg.Add(1)
		go func() {
			defer wg.Done()
			senders[i].run(stop)
		}()
	}
	var holds, holdErrs atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(20+rand.N(60)) * time.Millisecond):
			}
			var ids []string
			for _, s := range senders {
				s.mu.Lock()
				for _, id := range s.acked {
					ids = append(ids, id)
					if len(ids) > 2000 {
						break
					}
				}
				s.mu.Unlock()
			}
			if len(ids) == 0 {
				continue
			}
			id := ids[rand.N(len(ids))]
			out, err := exec.Command(harness.Binary(t), "queue", "hold", "--spool-dir", spool, id).CombinedOutput()
			if err != nil {
				holdErrs.Add(1)
			} else {
				holds.Add(1)
			}
			_ = out
			time.Sleep(time.Duration(rand.N(100)) * time.Millisecond)
			exec.Command(harness.Binary(t), "queue", "release", "--spool-dir", spool, id).Run()
		}
	}()
	killLoop(6, 400*time.Millisecond, 1000*time.Millisecond, func(i int) {
		r := relays[i%2]
		r.kill()
		r.restart()
		t.Logf("kill %d: SIGKILL and restart of relay %d", i+1, i%2)
	})
	time.Sleep(time.Second)
	stopLoad(t, stop, &wg, 60*time.Second, "senders")
	if out, err := exec.Command(harness.Binary(t), "queue", "release", "--spool-dir", spool, "--all").CombinedOutput(); err != nil {
		t.Logf("queue release --all: %v: %s", err, out)
	}
	healthy.Store(true)
	acked := map[string]string{}
	for _, s := range senders {
		maps.Copy(acked, s.acknowledged(t, 0))
	}
	delivered := revDur2Delivered(t, fake, acked, spool)
	t.Logf("%d acknowledged, %d delivered, %d holds (%d refused)", len(acked), len(delivered), holds.Load(), holdErrs.Load())
	for _, r := range relays {
		r.stop(20 * time.Second)
	}
}

// TestRevDur2FullDiskFlakyKill loads a relay whose spool is on a small
// disk that a filler keeps taking and giving back, toward an upstream
// that defers or drops many messages (so deferrals must be recorded,
// served messages written out, checkpoints retried on a full disk), and
// kills it with SIGKILL a few times. Then the disk gets room and the
// upstream heals: every acknowledged message must be delivered whole.
func TestRevDur2FullDiskFlakyKill(t *testing.T) {
	t.Parallel()
	mnt := revDur2Mount(t)
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 200, 40, 5)
	spool := filepath.Join(mnt, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--no-bounces",
		"--config", writeConfig(t, "connections = 3\n"))
	var n atomic.Int64
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
		switch k := n.Add(1); {
		case k%5 == 0:
			return revDur2Body(tag, 1200) // about 100 KB
		default:
			return revDur2Body(tag, 30)
		}
	}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender.start(3, stop, &wg)
	// The filler: fill the disk to a few hundred KB or less, hold, give
	// some back, again.
	var fills atomic.Int64
	fillerStop := make(chan struct{})
	fillerDone := make(chan struct{})
	go func() {
		defer close(fillerDone)
		for {
			select {
			case <-fillerStop:
				return
			case <-time.After(time.Duration(100+rand.N(300)) * time.Millisecond):
			}
			path := filepath.Join(mnt, "filler")
			if fills.Add(1)%2 == 1 {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
				if err != nil {
					continue
				}
				buf := make([]byte, 64<<10)
				for range 1 << 10 {
					if _, err := f.Write(buf); err != nil {
						break
					}
				}
				if fi, err := f.Stat(); err == nil {
					f.Truncate(max(0, fi.Size()-int64(rand.N(400<<10))))
				}
				f.Close()
			} else {
				os.Truncate(path, 0)
			}
		}
	}()
	killLoop(5, 800*time.Millisecond, 1500*time.Millisecond, killRestart(t, r))
	time.Sleep(2 * time.Second)
	stopLoad(t, stop, &wg, 90*time.Second, "senders")
	close(fillerStop)
	<-fillerDone
	os.Remove(filepath.Join(mnt, "filler"))
	healthy.Store(true)

	acked := sender.acknowledged(t, 20)
	delivered := revDur2Delivered(t, fake, acked, spool)
	t.Logf("%d acknowledged, %d delivered, %d sender retries, %d fills, %d transactions", len(acked), len(delivered),
		sender.retries, fills.Load(), len(fake.Transactions()))
	// How often a start found the disk too full to write out what a dead
	// journal served, and how often the running relay wrote it later.
	t.Logf("replays kept for lack of room: %d; written out later: %d",
		strings.Count(r.stderr(), "could not be written from the journal"), strings.Count(r.stderr(), "kept in the journal of a process that died are written out"))
	if t.Failed() {
		if dir := os.Getenv("REVDUR2_LOGS"); dir != "" {
			os.WriteFile(filepath.Join(dir, t.Name()+".log"), []byte(r.stderr()), 0o644)
		}
	}
	r.stop(20 * time.Second)
}
