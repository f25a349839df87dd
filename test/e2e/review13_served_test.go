package e2e

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	r := startRelayOnLoop(t, img, mnt, "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--interface", "127.0.0.1",
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
	if !review13Arrive(t, up, acked, 30*time.Second) {
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

// review13Arrive waits until the upstream has accepted a message from each
// sender, and reports each one it has not as lost.
func review13Arrive(t *testing.T, up *harness.FakeSMTP, froms []string, wait time.Duration) bool {
	t.Helper()
	// One count of the upstream's transactions per look: a copy of them
	// all per sender (as acceptedFrom once took) copied every body
	// hundreds of times each 50 ms, and under -race the test process,
	// the upstream's too, ran so hot that the relay's deliveries crawled
	// and the wait ran out.
	missing := func() []string {
		accepted := up.AcceptedFrom()
		var out []string
		for _, from := range froms {
			if accepted[from] == 0 {
				out = append(out, from)
			}
		}
		return out
	}
	if waitFor(wait, func() bool { return len(missing()) == 0 }) {
		return true
	}
	for _, from := range missing() {
		t.Errorf("%s: acknowledged, never delivered (lost)", from)
	}
	return false
}

// review13Body is a message of about size octets whose lines carry tag, so
// that a delivered copy can be checked whole.
func review13Body(tag string, size int) string {
	var b strings.Builder
	b.WriteString("Subject: " + tag + "\n\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s line %06d %s\n", tag, i, strings.Repeat("x", 50))
	}
	return b.String()
}

// TestReview13ServedKillMixed: SIGKILL five times at random moments (so,
// sometimes in a checkpoint) while clients send messages of sizes on both
// sides of what is served from memory (128 KiB) and the relay forwards on
// disconnection and by polling to a slow upstream, and another process
// lists the queue. Every acknowledged message is delivered, whole, with
// its content as sent (duplicates are allowed after a kill); nothing is
// quarantined; the spool ends empty.
func TestReview13ServedKillMixed(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 40 * time.Millisecond}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--config", writeConfig(t, "connections = 3\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	sizes := []int{300, 8 << 10, 60 << 10, 128<<10 - 200, 128<<10 + 200, 200 << 10}
	var mu sync.Mutex
	acked := map[string]string{}
	stopSending := senders(4, func(s, k int) {
		sendSession(r.addr(), 2, func(m int) (string, string) {
			from := fmt.Sprintf("mix-%d-%d-%d@example.org", s, k, m)
			return from, review13Body(from, sizes[(s+k+m)%len(sizes)])
		}, func(from, body string) {
			mu.Lock()
			acked[from] = body
			mu.Unlock()
		})
		time.Sleep(30 * time.Millisecond)
	})
	// Another process looks at the spool meanwhile.
	stopListing := senders(1, func(_, _ int) {
		time.Sleep(300 * time.Millisecond)
		exec.Command(harness.Binary(t), "queue", "list", "--spool-dir", spool).Run()
	})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	for range 5 {
		time.Sleep(time.Duration(600+rng.IntN(1200)) * time.Millisecond)
		t.Logf("kill at %s", time.Now().UTC().Format("15:04:05.000"))
		r.kill()
		r.restart()
	}
	stopSending()
	stopListing()
	mustSend(t, r.addr(), "last@example.org", []string{"bob@example.net"}, message("last"))
	mu.Lock()
	defer mu.Unlock()
	review13Arrive(t, up, slices.Collect(maps.Keys(acked)), 120*time.Second)
	for _, tx := range up.Transactions() {
		body, ok := acked[tx.MailFrom]
		if !ok || !tx.Accepted() {
			continue
		}
		want := strings.ReplaceAll(strings.SplitN(body, "\n\n", 2)[1], "\n", "\r\n")
		if !strings.HasSuffix(string(tx.Data), want) {
			t.Errorf("%s: delivered %d octets, not ending in the %d octets of its body", tx.MailFrom, len(tx.Data), len(want))
		}
	}
	waitFor(10*time.Second, func() bool { return len(messageIDs(t, spool)) == 0 })
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("left in the spool: %v (files %v)", ids, spoolFiles(t, spool))
	}
	// Recovery quarantines receipts cut short by a kill (never
	// acknowledged); an acknowledged message must not be among them.
	q, _ := os.ReadDir(filepath.Join(spool, ".quarantine"))
	for _, e := range q {
		b, _ := os.ReadFile(filepath.Join(spool, ".quarantine", e.Name()))
		tag, _, _ := strings.Cut(strings.TrimPrefix(string(b), "Subject: "), "\n")
		tag = strings.TrimSuffix(tag, "\r")
		if _, ok := acked[tag]; ok && strings.HasSuffix(e.Name(), ".content") {
			t.Errorf("quarantined %s: the content of %s, acknowledged", e.Name(), tag)
		}
	}
	t.Logf("%d quarantined files (unacknowledged receipts)", len(q))
	t.Logf("%d acknowledged, %d upstream transactions", len(acked), len(up.Transactions()))
}

// TestReview13ServedClientFilter: a --client-filter gets the paths of
// messages that were served from memory (their files are written at
// once) and edits both, by renaming new files over them as E-MailRelay's
// addsig does; what is forwarded is the edited content, to the edited
// recipient, once each, and the spool ends empty.
func TestReview13ServedClientFilter(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--client-filter", script(t, "addsig", review12Addsig), "--interface", "127.0.0.1", "--spool-dir", spool)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var froms []string
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := dialFrom(r.addr(), "127.0.0.1")
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.cmd("EHLO client.e2e.test")
			for m := range 8 {
				from := fmt.Sprintf("cf-%d-%d@example.org", s, m)
				if _, err := c.send(from, []string{"bob@example.net"}, review13Body(from, 1000+m*9000)); err != nil {
					t.Errorf("%s: %v", from, err)
					continue
				}
				mu.Lock()
				froms = append(froms, from)
				mu.Unlock()
			}
			c.cmd("QUIT")
		}()
	}
	wg.Wait()
	review13Arrive(t, up, froms, 30*time.Second)
	for _, from := range froms {
		if n := acceptedFrom(up, from); n != 1 {
			t.Errorf("%s delivered %d times; want once", from, n)
		}
	}
	for _, tx := range up.Transactions() {
		if !strings.HasSuffix(string(tx.Data), "-- \r\nsigned by review 12\r\n") {
			t.Errorf("%s: forwarded without the client filter's signature", tx.MailFrom)
		}
		if to := tx.To(); len(to) != 1 || to[0] != "carol@example.net" {
			t.Errorf("%s: forwarded to %v; want the filter's carol@example.net", tx.MailFrom, to)
		}
	}
	waitFor(10*time.Second, func() bool { return len(messageIDs(t, spool)) == 0 })
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("left in the spool: %v", spoolFiles(t, spool))
	}
}

// TestReview13ServedSlowDataCommand: a client that takes six seconds over
// its DATA gets a message id from the time it started; the message is then
// served from memory for up to a second or two after its 250, like any
// other. "queue hold" from another process right after the 250 must find
// it (waiting for its files, as for any young message) and hold it, and
// the relay must not forward it when the client disconnects.
func TestReview13ServedSlowDataCommand(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<slow@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	fmt.Fprintf(c.conn, "Subject: slow\r\n\r\n")
	for i := range 12 {
		time.Sleep(500 * time.Millisecond)
		fmt.Fprintf(c.conn, "line %d of a slow client\r\n", i)
	}
	final, err := c.cmd(".")
	if err != nil {
		t.Fatal(err)
	}
	id := queuedID(t, final)
	out := queueCLI(t, spool, "hold", id)[id]
	if out == "done" {
		out = "held"
	}
	if out != "held" {
		t.Errorf("queue hold %s right after its 250: %q; want held (files %v)", id, out, spoolFiles(t, spool))
	}
	c.cmd("QUIT")
	c.Close()
	time.Sleep(2 * time.Second)
	if n := acceptedFrom(up, "slow@example.org"); n != 0 && out == "held" {
		t.Errorf("held, and forwarded %d times", n)
	}
}
