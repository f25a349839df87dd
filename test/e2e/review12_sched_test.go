package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Review 12, the scheduler's hand-off of committed messages and its
// per-destination queues: the queue commands, run from another process,
// still rule messages the relay handed itself in memory, and no message
// goes twice in a run without a crash.

// queueCLI runs "relaykeeper queue ACTION --json" on the spool and returns
// each id's outcome.
func queueCLI(t *testing.T, spool, action string, ids ...string) map[string]string {
	t.Helper()
	_, out, errOut := runCLI(t, append([]string{"queue", action, "--json", "--spool-dir", spool}, ids...)...)
	var res struct {
		Results []struct{ ID, Outcome, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("queue %s %v: %v; stdout %q stderr %q", action, ids, err, out, errOut)
	}
	m := map[string]string{}
	for _, r := range res.Results {
		m[r.ID] = r.Outcome
	}
	return m
}

// acceptedFrom counts the messages from a sender the upstream accepted.
func acceptedFrom(f *harness.FakeSMTP, from string) int {
	return f.AcceptedFrom()[from]
}

// TestReview12SchedQueueCommands: messages accepted while the only
// delivery worker is busy wait in the scheduler's memory; "queue hold" and
// "queue delete" from another process, before and after the client's
// disconnection hands them over, keep them from delivery (unless the
// command reported them busy, claimed by a delivery), the others go once,
// and "queue release" sends a held one.
func TestReview12SchedQueueCommands(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData && tx.MailFrom == "blocker@example.org" {
			// Longer than a served message waits for the checkpoint
			// that writes its files (about 2.5 s, more on a busy disk):
			// a queue command in another process finds only files.
			return harness.Response{Delay: 6 * time.Second}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--config", writeConfig(t, "connections = 1\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "blocker@example.org", []string{"bob@example.net"}, message("blocker"))
	time.Sleep(500 * time.Millisecond) // the blocker is under way

	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	ids := map[string]string{}
	for _, name := range []string{"hold-before", "hold-after", "delete-before", "delete-after", "plain1", "plain2"} {
		tx, err := c.send(name+"@example.org", []string{"bob@example.net"}, message(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ids[name] = queuedID(t, tx.Final)
	}
	busy := map[string]bool{}
	note := func(action string, names ...string) {
		var list []string
		for _, n := range names {
			list = append(list, ids[n])
		}
		for _, n := range names {
			out := queueCLI(t, spool, action, list...)[ids[n]]
			t.Logf("%s %s (%s): %s", action, n, ids[n], out)
			switch out {
			case "busy":
				busy[n] = true
				t.Logf("%s %s: busy (claimed by a delivery)", action, n)
			case "held", "deleted", "done", "ok", "released":
			default:
				t.Logf("%s %s: outcome %q", action, n, out)
			}
			list = list[:0]
		}
	}
	// Before the disconnection hands the messages to the scheduler.
	note("hold", "hold-before")
	note("delete", "delete-before")
	c.cmd("QUIT")
	c.Close()
	// After it: they wait behind the blocker.
	note("hold", "hold-after")
	note("delete", "delete-after")

	if !waitFor(20*time.Second, func() bool {
		return acceptedFrom(up, "plain1@example.org") > 0 && acceptedFrom(up, "plain2@example.org") > 0
	}) {
		t.Fatalf("plain1 and plain2 not delivered; stderr:\n%s", r.stderr())
	}
	time.Sleep(2500 * time.Millisecond) // two poll ticks more
	for _, name := range []string{"hold-before", "hold-after", "delete-before", "delete-after"} {
		if n := acceptedFrom(up, name+"@example.org"); n > 0 && !busy[name] {
			t.Errorf("%s (%s): delivered %d times after the queue command said it was done", name, ids[name], n)
		}
	}
	for _, name := range []string{"blocker", "plain1", "plain2"} {
		if n := acceptedFrom(up, name+"@example.org"); n != 1 {
			t.Errorf("%s: delivered %d times; want once", name, n)
		}
	}
	// Released, a held message goes, once.
	for _, name := range []string{"hold-before", "hold-after"} {
		if busy[name] {
			continue
		}
		if out := queueCLI(t, spool, "release", ids[name])[ids[name]]; out == "not found" {
			t.Errorf("release %s: %q; want it held", name, out)
			continue
		}
		if !waitFor(10*time.Second, func() bool { return acceptedFrom(up, name+"@example.org") > 0 }) {
			t.Errorf("%s: not delivered after release", name)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for _, name := range []string{"hold-before", "hold-after"} {
		if n := acceptedFrom(up, name+"@example.org"); n > 1 {
			t.Errorf("%s: delivered %d times after release; want once", name, n)
		}
	}
}

// TestReview12SchedOnce: senders in parallel, several messages per session,
// while poll ticks, disconnections and "queue flush" all wake the
// scheduler, to a destination that takes a while over each message:
// every acknowledged message is delivered exactly once, and nothing else.
func TestReview12SchedOnce(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 40 * time.Millisecond}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--config", writeConfig(t, "connections = 4\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	const senders, sessions, per = 4, 8, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	stopFlush := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopFlush:
				return
			case <-time.After(700 * time.Millisecond):
				runCLI(t, "queue", "flush", "--spool-dir", spool)
			}
		}
	}()
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range sessions {
				c, _, err := dialFrom(r.addr(), "127.0.0.1")
				if err != nil {
					t.Error(err)
					return
				}
				c.cmd("EHLO client.e2e.test")
				for m := range per {
					from := fmt.Sprintf("once-%d-%d-%d@example.org", s, k, m)
					if _, err := c.send(from, []string{"bob@example.net"}, message(from)); err == nil {
						mu.Lock()
						acked[from] = true
						mu.Unlock()
					}
					if m == 1 {
						time.Sleep(300 * time.Millisecond) // a poll tick may come first
					}
				}
				c.cmd("QUIT")
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(stopFlush)
	waitFor(30*time.Second, func() bool {
		for from := range acked {
			if acceptedFrom(up, from) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	counts := map[string]int{}
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			counts[tx.MailFrom]++
		}
	}
	for from := range acked {
		if counts[from] != 1 {
			t.Errorf("%s: delivered %d times; want exactly once", from, counts[from])
		}
	}
	for from, n := range counts {
		if !acked[from] {
			t.Errorf("%s: delivered %d times but never acknowledged", from, n)
		}
	}
	if len(acked) != senders*sessions*per {
		t.Errorf("%d messages acknowledged; want %d", len(acked), senders*sessions*per)
	}
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("left in the spool: %v", ids)
	}
}

// TestReview12SchedOtherProcesses: with --forward-on-disconnect and no
// poll, messages that another process puts in the spool ("relaykeeper
// submit", which sends SIGHUP) are forwarded at once, also while clients
// come and go, and a restart forwards what was left, each message once.
func TestReview12SchedOtherProcesses(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	for k := range 4 {
		from := fmt.Sprintf("submitted%d@example.org", k)
		code, out, errOut := runCLIStdin(t, "Subject: submitted\n\nvia submit\n", "submit", "--spool-dir", spool, "-f", from, "bob@example.net")
		if code != 0 {
			t.Fatalf("submit: exit %d, %q %q", code, out, errOut)
		}
		// A client session in between: its disconnection hands over
		// only what the relay itself accepted.
		mustSend(t, r.addr(), fmt.Sprintf("client%d@example.org", k), []string{"bob@example.net"}, message("client"))
	}
	for k := range 4 {
		for _, from := range []string{fmt.Sprintf("submitted%d@example.org", k), fmt.Sprintf("client%d@example.org", k)} {
			if !waitFor(10*time.Second, func() bool { return acceptedFrom(up, from) > 0 }) {
				t.Errorf("%s: not forwarded within 10s", from)
			}
		}
	}
	// Stopped, a message submitted; started again, it goes.
	r.stop(10 * time.Second)
	if code, out, errOut := runCLIStdin(t, "Subject: while stopped\n\nx\n", "submit", "--spool-dir", spool, "-f", "stopped@example.org", "bob@example.net"); code != 0 {
		t.Fatalf("submit: exit %d, %q %q", code, out, errOut)
	}
	r.restart()
	if !waitFor(10*time.Second, func() bool { return acceptedFrom(up, "stopped@example.org") > 0 }) {
		t.Errorf("a message submitted while the relay was stopped: not forwarded within 10s of the restart")
	}
	time.Sleep(time.Second)
	counts := map[string]int{}
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			counts[tx.MailFrom]++
		}
	}
	for from, n := range counts {
		if n != 1 {
			t.Errorf("%s: forwarded %d times; want once", from, n)
		}
	}
}

// runCLIStdin runs the binary with stdin and returns its exit code and
// output.
func runCLIStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	out, errOut, code := runBinary(t, harness.Binary(t), stdin, args...)
	return code, out, errOut
}

// TestReview12SchedSecondLegLimit: a message whose first recipient is at
// one destination and another at a second one waits in the first's queue;
// the session its worker opens for the second destination still counts
// against that destination's destination_concurrency_limit (1 here), with
// messages of the second destination's own queue under way at the same
// time.
func TestReview12SchedSecondLegLimit(t *testing.T) {
	t.Parallel()
	fast := harness.NewFakeSMTP(t, harness.Script{})
	slow, meter := newMeteredSink(t, 300*time.Millisecond)
	table := transportTable(t, "a.example fast:", "b.example slow:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 8

[routing]
transport_maps = ["hash:%s"]

[transports.fast]
nexthop = "[%s]:%s"

[transports.slow]
nexthop = "[%s]:%s"
destination_concurrency_limit = 1
`, table, hostOf(fast.Addr()), portOf(fast.Addr()), hostOf(slow.Addr()), portOf(slow.Addr())))
	var msgs [][]string
	for i := range 8 {
		msgs = append(msgs, []string{fmt.Sprintf("x%d@a.example", i), fmt.Sprintf("x%d@b.example", i)})
		msgs = append(msgs, []string{fmt.Sprintf("y%d@b.example", i)})
	}
	storeThenForward(t, cfg, msgs)
	slow.WaitTransactions(t, 16, 30*time.Second)
	if n := slow.MaxConcurrent(); n > 1 {
		t.Errorf("%d sessions at once at the destination limited to 1", n)
	}
	if n := meter.max(); n > 1 {
		t.Errorf("%d transactions at once at the destination limited to 1", n)
	}
	got := map[string]int{}
	for _, tx := range append(slow.Transactions(), fast.Transactions()...) {
		for _, a := range tx.To() {
			if tx.Accepted() {
				got[a]++
			}
		}
	}
	for _, m := range msgs {
		for _, a := range m {
			if got[a] != 1 {
				t.Errorf("%s: delivered %d times; want once", a, got[a])
			}
		}
	}
}

// TestReview12SchedSessionFaults: the scheduler carries several messages
// over one session; when the upstream ends that session in the middle of
// a batch (421 to the third MAIL, a close without a word, a reset before
// its reply to a final dot), the rest of the batch is neither lost nor
// bounced: every message is accepted exactly once in the end.
func TestReview12SchedSessionFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stage harness.Stage
		nth   int // the nth MAIL of a connection, or nth final dot
		fault harness.Response
	}{
		{"421 to the third MAIL", harness.StageMail, 3, harness.Response{Fault: harness.Close421, Reply: "421 4.7.0 fake Too many messages, closing connection"}},
		{"close at the third MAIL", harness.StageMail, 3, harness.Response{Fault: harness.Close}},
		{"reset at the second final dot", harness.StageEndOfData, 2, harness.Response{Fault: harness.Reset}},
		{"421 to the fourth RCPT", harness.StageRcpt, 4, harness.Response{Fault: harness.Close421, Reply: "421 4.3.2 fake shutting down"}},
		{"421 to the third MAIL, session left open", harness.StageMail, 3, harness.Response{Reply: "421 4.3.2 fake shutting down"}},
		{"421 to the second final dot", harness.StageEndOfData, 2, harness.Response{Reply: "421 4.3.2 fake shutting down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[[2]int]int{}
			up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, _ string) harness.Response {
				if st != tc.stage {
					return harness.Response{}
				}
				mu.Lock()
				defer mu.Unlock()
				k := [2]int{tx.Conn, int(st)}
				seen[k]++
				if seen[k] == tc.nth {
					return tc.fault
				}
				return harness.Response{}
			}})
			spool := t.TempDir()
			cfg := writeConfig(t, "connections = 2\n")
			store := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg, "--forward-to", up.Addr(),
				"--poll", "3600", "--interface", "127.0.0.1", "--spool-dir", spool)
			const n = 12
			for i := range n {
				mustSend(t, store.addr(), fmt.Sprintf("batch%d@example.org", i), []string{"bob@example.net"}, message("batch"))
			}
			store.stop(10 * time.Second)
			r := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg, "--forward-to", up.Addr(),
				"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool)
			ok := waitFor(40*time.Second, func() bool {
				for i := range n {
					if acceptedFrom(up, fmt.Sprintf("batch%d@example.org", i)) == 0 {
						return false
					}
				}
				return true
			})
			time.Sleep(time.Second)
			for i := range n {
				if c := acceptedFrom(up, fmt.Sprintf("batch%d@example.org", i)); c != 1 {
					t.Errorf("batch%d: accepted %d times; want once", i, c)
				}
			}
			if !ok {
				t.Logf("relay:\n%s", r.stderr())
			}
			for _, e := range r.events("delivery") {
				if res := e.Get("result"); res != "sent" && res != "deferred" {
					t.Errorf("delivery line with result=%s: %v", res, e.Fields)
				}
			}
			// RFC 5321 section 3.8: after a 421 the session is over; the
			// relay sends no further transaction on it (this upstream
			// leaves it open to see). The one exception is a transaction
			// whose MAIL, RCPT and DATA went in the same write as the
			// final dot the 421 answered (RFC 2920 section 3.1,
			// docs/queue.md): sent before the 421 could be read, it must
			// end with no content at all.
			done421 := map[int]bool{}
			begun := map[int]bool{} // the transaction begun behind the dot the 421 answered
			for _, tx := range up.Transactions() {
				if done421[tx.Conn] && !begun[tx.Conn] && strings.HasPrefix(tx.DataReply, "354") && len(tx.Data) == 0 && tx.Reply == "" {
					begun[tx.Conn] = true
					continue
				}
				if done421[tx.Conn] {
					t.Errorf("conn %d: a transaction (MAIL <%s>) after the upstream's 421 on the same session", tx.Conn, tx.MailFrom)
				}
				said421 := strings.HasPrefix(tx.Reply, "421") || strings.HasPrefix(tx.MailReply, "421")
				for _, r := range tx.Rcpts {
					said421 = said421 || strings.HasPrefix(r.Reply, "421")
				}
				if said421 {
					done421[tx.Conn] = true
				}
			}
			t.Logf("%d connections", up.Connections())
		})
	}
}

// TestReview12SchedPartialRetry: messages with a recipient at each of two
// destinations, the second of which defers each recipient once (451 to
// RCPT), and several messages per session: the retry goes to the deferred
// recipient only, and every recipient gets the message exactly once.
func TestReview12SchedPartialRetry(t *testing.T) {
	t.Parallel()
	fast := harness.NewFakeSMTP(t, harness.Script{})
	var mu sync.Mutex
	tries := map[string]int{}
	slow := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, arg string) harness.Response {
		if st != harness.StageRcpt {
			return harness.Response{}
		}
		mu.Lock()
		defer mu.Unlock()
		tries[arg]++
		if tries[arg] == 1 {
			return harness.Response{Reply: "451 4.7.1 greylisted, try again"}
		}
		return harness.Response{}
	}})
	table := transportTable(t, "a.example fast:", "b.example slow:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 4

[routing]
transport_maps = ["hash:%s"]

[transports.fast]
nexthop = "[%s]:%s"

[transports.slow]
nexthop = "[%s]:%s"
`, table, hostOf(fast.Addr()), portOf(fast.Addr()), hostOf(slow.Addr()), portOf(slow.Addr())))
	r := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg, "--forward-on-disconnect", "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var all []string
	for i := range 6 {
		to := []string{fmt.Sprintf("x%d@a.example", i), fmt.Sprintf("x%d@b.example", i), fmt.Sprintf("y%d@b.example", i)}
		if i%2 == 1 {
			to = []string{to[1], to[0], to[2]} // the deferring destination first
		}
		if _, err := c.send("alice@example.org", to, message(fmt.Sprintf("partial %d", i))); err != nil {
			t.Fatal(err)
		}
		all = append(all, to...)
	}
	c.cmd("QUIT")
	c.Close()
	count := func() map[string]int {
		got := map[string]int{}
		for _, tx := range append(fast.Transactions(), slow.Transactions()...) {
			if tx.Accepted() {
				for _, a := range tx.To() {
					got[a]++
				}
			}
		}
		return got
	}
	waitFor(30*time.Second, func() bool {
		got := count()
		for _, a := range all {
			if got[a] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	got := count()
	for _, a := range all {
		if got[a] != 1 {
			t.Errorf("%s: got the message %d times; want once", a, got[a])
		}
	}
}

// TestReview12SchedStopMidBatch: SIGTERM while a worker carries a batch of
// one destination's messages over a slow session: the relay exits
// cleanly, the message under way is finished or left ready, the rest of
// the batch is left ready (not claimed, not failed), and after a restart
// every message is delivered exactly once.
func TestReview12SchedStopMidBatch(t *testing.T) {
	t.Parallel()
	up, _ := newMeteredSink(t, 250*time.Millisecond)
	spool := t.TempDir()
	cfg := writeConfig(t, "connections = 1\n[smtp]\nshutdown_grace = \"5s\"\n")
	store := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg, "--forward-to", up.Addr(),
		"--poll", "3600", "--interface", "127.0.0.1", "--spool-dir", spool)
	const n = 20
	for i := range n {
		mustSend(t, store.addr(), fmt.Sprintf("stop%d@example.org", i), []string{"bob@example.net"}, message("stop"))
	}
	store.stop(10 * time.Second)
	r := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg, "--forward-to", up.Addr(),
		"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool)
	time.Sleep(1200 * time.Millisecond)
	r.stop(10 * time.Second)
	before := len(up.Transactions())
	st := opsSpool(t, spool)
	t.Logf("stopped after %d transactions; spool %v", before, st)
	for id, suffixes := range st {
		for _, suf := range suffixes {
			if strings.HasSuffix(suf, ".busy") || strings.HasSuffix(suf, ".bad") || strings.HasSuffix(suf, ".new") {
				t.Errorf("after a clean stop: %s.%s", id, suf)
			}
		}
	}
	r.restart()
	waitFor(30*time.Second, func() bool {
		for i := range n {
			if acceptedFrom(up, fmt.Sprintf("stop%d@example.org", i)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	for i := range n {
		if c := acceptedFrom(up, fmt.Sprintf("stop%d@example.org", i)); c != 1 {
			t.Errorf("stop%d: delivered %d times; want once", i, c)
		}
	}
}

// TestReview12SchedKillHandOff: SIGKILL, three times, while clients send
// several messages per session and the relay forwards only on their
// disconnection (the in-memory hand-off) and at start-up, to an upstream
// that takes a while over each message: every acknowledged message is
// delivered (duplicates are allowed only after a kill), nothing
// unacknowledged appears, and the spool ends empty.
func TestReview12SchedKillHandOff(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 30 * time.Millisecond}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "connections = 3\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	var mu sync.Mutex
	acked := map[string]bool{}
	tried := map[string]bool{}
	stop := senders(4, func(s, k int) {
		sendSession(r.addr(), 3, func(m int) (string, string) {
			from := fmt.Sprintf("kill-%d-%d-%d@example.org", s, k, m)
			mu.Lock()
			tried[from] = true
			mu.Unlock()
			return from, message(from)
		}, func(from, _ string) {
			mu.Lock()
			acked[from] = true
			mu.Unlock()
		})
		// Hundreds of messages, not thousands: what counts is the kills,
		// and a race-built run on a busy machine must still deliver them
		// all within the wait below.
		time.Sleep(25 * time.Millisecond)
	})
	for round := range 3 {
		time.Sleep(time.Duration(900+400*round) * time.Millisecond)
		t.Logf("kill at %s", time.Now().UTC().Format("15:04:05.000"))
		r.kill()
		r.restart()
	}
	stop()
	// Wake the scheduler for what the last run's clients left.
	mustSend(t, r.addr(), "last@example.org", []string{"bob@example.net"}, message("last"))
	mu.Lock()
	defer mu.Unlock()
	if !waitFor(120*time.Second, func() bool {
		for from := range acked {
			if acceptedFrom(up, from) == 0 {
				return false
			}
		}
		return true
	}) {
		for from := range acked {
			if acceptedFrom(up, from) == 0 {
				t.Errorf("%s: acknowledged, never delivered (lost)", from)
			}
		}
	}
	for _, tx := range up.Transactions() {
		if tx.Accepted() && !tried[tx.MailFrom] && tx.MailFrom != "last@example.org" {
			t.Errorf("delivered a message nobody sent: <%s>", tx.MailFrom)
		}
	}
	waitFor(10*time.Second, func() bool { return len(messageIDs(t, spool)) == 0 })
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("left in the spool: %v (files %v)", ids, spoolFiles(t, spool))
		for _, id := range ids {
			for _, l := range strings.Split(r.stderr(), "\n") {
				if strings.Contains(l, id) || strings.Contains(l, "recover") || strings.Contains(l, "started") || strings.Contains(l, "journal") {
					t.Logf("log: %s", l)
				}
			}
		}
	}
	t.Logf("%d acknowledged, %d upstream transactions", len(acked), len(up.Transactions()))
}

// TestReview12SchedRestartFindsAll: with --forward-on-disconnect and no
// poll (E-MailRelay's usual forwarding), a relay killed in the middle of
// deliveries (messages claimed, journal not yet checkpointed) and started
// again forwards every message in the spool without any client coming:
// the start-up must not miss the messages its recovery hands back.
func TestReview12SchedRestartFindsAll(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 100 * time.Millisecond}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "connections = 4\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	const n = 60
	for i := range n {
		mustSend(t, r.addr(), fmt.Sprintf("restart%d@example.org", i), []string{"bob@example.net"}, message("restart"))
	}
	time.Sleep(300 * time.Millisecond) // deliveries under way
	r.kill()
	t.Logf("killed with %d delivered; spool %d messages", len(up.Transactions()), len(messageIDs(t, spool)))
	r.restart()
	if !waitFor(40*time.Second, func() bool { return len(messageIDs(t, spool)) == 0 }) {
		ids := messageIDs(t, spool)
		t.Errorf("40s after the restart, %d messages still in the spool, none of them tried: %v", len(ids), spoolFiles(t, spool))
	}
	for i := range n {
		if acceptedFrom(up, fmt.Sprintf("restart%d@example.org", i)) == 0 {
			t.Errorf("restart%d: never delivered", i)
		}
	}
}

// claimedAtKill fills a spool with many held messages (which recovery
// looks at one by one, in the background, after the relay has started)
// and kills a relay while ten messages are claimed by deliveries that a
// slow upstream keeps under way. It returns the spool and the upstream.
func claimedAtKill(t *testing.T) (string, *harness.FakeSMTP, []string, int) {
	t.Helper()
	var mu sync.Mutex
	slowNow := true
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		mu.Lock()
		defer mu.Unlock()
		if st == harness.StageEndOfData && slowNow {
			return harness.Response{Delay: 20 * time.Second}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	// Held messages, written as the spool documents them.
	held := 4000
	for i := range held {
		id := fmt.Sprintf("%08X%08X", 0x10000000, i)
		os.WriteFile(filepath.Join(spool, id+".content"), []byte("Subject: held\r\n\r\nheld\r\n"), 0o640)
		os.WriteFile(filepath.Join(spool, id+".envelope.held"), []byte("X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n"+
			"X-MailRelay-From: held@example.org\r\nX-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: bob@example.net\r\n"+
			"X-MailRelay-Authentication: \r\nX-MailRelay-Client: 127.0.0.1\r\nX-MailRelay-MailFromAuthIn: \r\nX-MailRelay-MailFromAuthOut: \r\nX-MailRelay-End: 1\r\n"), 0o640)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "connections = 10\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	var from []string
	for i := range 10 {
		f := fmt.Sprintf("claimed%d@example.org", i)
		mustSend(t, r.addr(), f, []string{"bob@example.net"}, message("claimed"))
		from = append(from, f)
	}
	if !waitFor(10*time.Second, func() bool {
		n := 0
		for _, sufs := range spoolFiles(t, spool) {
			if slices.Contains(sufs, "envelope.busy") {
				n++
			}
		}
		return n == 10
	}) {
		t.Fatalf("the ten messages were not all claimed: %v", len(spoolFiles(t, spool)))
	}
	r.kill()
	mu.Lock()
	slowNow = false
	mu.Unlock()
	return spool, up, from, up.Connections()
}

// acceptedAfter counts the messages from a sender the upstream accepted
// on connections after the first conns (the killed relay's sessions may
// still get their replies, written to a closed socket).
func acceptedAfter(f *harness.FakeSMTP, from string, conns int) int {
	n := 0
	for _, tx := range f.Transactions() {
		if tx.MailFrom == from && tx.Accepted() && tx.Conn > conns {
			n++
		}
	}
	return n
}

// TestReview12SchedRecoveredAfterClient: messages that a killed relay had
// claimed are handed back by the recovery of the next start, which runs in
// the background; a client that comes and goes afterwards makes the relay
// forward them (it listed the spool on each disconnection). With the
// hand-off of committed messages, a disconnection no longer lists the
// spool, and they wait for a SIGHUP, a poll or the next start.
func TestReview12SchedRecoveredAfterClient(t *testing.T) {
	t.Parallel()
	spool, up, from, conns := claimedAtKill(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "connections = 10\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	waitFor(20*time.Second, func() bool { return strings.Contains(r.stderr(), "spool recovered") })
	time.Sleep(time.Second)
	mustSend(t, r.addr(), "later@example.org", []string{"bob@example.net"}, message("later"))
	waitFor(10*time.Second, func() bool {
		for _, f := range from {
			if acceptedAfter(up, f, conns) == 0 {
				return false
			}
		}
		return true
	})
	for _, f := range from {
		if acceptedAfter(up, f, conns) == 0 {
			t.Errorf("%s: claimed when the relay was killed, not forwarded within 10s of the restart and a client's visit", f)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(r.stderr(), "\n") {
			if strings.Contains(l, "delivery") || strings.Contains(l, "recover") || strings.Contains(l, "accept") {
				t.Logf("log: %s", l)
			}
		}
		t.Logf("spool: %d files", len(spoolFiles(t, spool)))
	}
}

// TestReview12SchedRecoveredNoClient: the same without any client after
// the restart: what recovery hands back is forwarded all the same.
func TestReview12SchedRecoveredNoClient(t *testing.T) {
	t.Parallel()
	spool, up, from, conns := claimedAtKill(t)
	startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "connections = 10\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	waitFor(10*time.Second, func() bool {
		for _, f := range from {
			if acceptedAfter(up, f, conns) == 0 {
				return false
			}
		}
		return true
	})
	for _, f := range from {
		if acceptedAfter(up, f, conns) == 0 {
			t.Errorf("%s: claimed when the relay was killed, not forwarded within 10s of the restart", f)
		}
	}
}
