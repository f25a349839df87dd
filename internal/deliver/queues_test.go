package deliver

import (
	"container/heap"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// takeAll takes batches of one until none is left, with every destination
// limited to limit batches under way, and returns the keys in the order
// served.
func takeAll(r *readyQueues, limit int) []string {
	var got []string
	for range 100 {
		key, ids, ok := r.take(func(route.Destination) int { return limit }, func(int, int) int { return 1 })
		if !ok {
			break
		}
		got = append(got, key+":"+strings.Join(ids, ","))
	}
	return got
}

// TestReadyQueuesRoundRobin: destinations are served in turn, so one with
// many messages does not keep the others waiting.
func TestReadyQueuesRoundRobin(t *testing.T) {
	r := newReadyQueues()
	for i := range 4 {
		r.push(fmt.Sprintf("a%d", i), route.Destination{Key: "a"})
	}
	r.push("b0", route.Destination{Key: "b"})
	r.push("c0", route.Destination{Key: "c"})
	r.push("b1", route.Destination{Key: "b"})
	got := takeAll(r, 10)
	want := []string{"a:a0", "b:b0", "c:c0", "a:a1", "b:b1", "a:a2", "a:a3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order served (-want +got):\n%s", diff)
	}
	if r.n != 0 {
		t.Errorf("%d messages left queued; want 0", r.n)
	}
}

// TestReadyQueuesLimit: a destination at its limit waits in its queue,
// without holding up the others, until one of its batches ends; what a
// batch did not get to goes back at the head of its queue.
func TestReadyQueuesLimit(t *testing.T) {
	r := newReadyQueues()
	for _, id := range []string{"a0", "a1", "a2"} {
		r.push(id, route.Destination{Key: "a"})
	}
	r.push("b0", route.Destination{Key: "b"})
	if got, want := takeAll(r, 1), []string{"a:a0", "b:b0"}; !cmp.Equal(got, want) {
		t.Fatalf("served with a limit of 1 = %v; want %v", got, want)
	}
	r.finished("b", nil)
	if got := takeAll(r, 1); len(got) != 0 {
		t.Fatalf("served while a is at its limit = %v; want nothing", got)
	}
	r.finished("a", []string{"a0"}) // a0 was not started
	if got, want := takeAll(r, 1), []string{"a:a0"}; !cmp.Equal(got, want) {
		t.Fatalf("served after a's batch ended = %v; want %v", got, want)
	}
	r.finished("a", nil)
	if got, want := takeAll(r, 2), []string{"a:a1", "a:a2"}; !cmp.Equal(got, want) {
		t.Errorf("served with a limit of 2 = %v; want %v", got, want)
	}
}

// TestBatchSize: with more destinations than free workers a worker takes
// a destination's messages together; with few destinations they are
// shared over the sessions the destination may open.
func TestBatchSize(t *testing.T) {
	s := New(Options{Connections: 20, MessagesPerConnection: 100})
	for _, c := range []struct{ queued, free, idle, dests, want int }{
		{10, 2, 20, 1000, 10}, // many destinations: one session each
		{10, 20, 20, 1, 1},    // one destination, ten messages: in parallel
		{5000, 20, 20, 1, 100},
		{7, 2, 20, 2, 4},
	} {
		if got := s.batchSize(c.queued, c.free, c.idle, c.dests); got != c.want {
			t.Errorf("batchSize(%d queued, %d free, %d idle, %d destinations) = %d; want %d",
				c.queued, c.free, c.idle, c.dests, got, c.want)
		}
	}
}

// TestSessionCarriesSeveral: messages to more destinations than workers,
// queued in turn, go over one session per destination, several per
// session (a parked session per message would be evicted before its
// destination's next message came).
func TestSessionCarriesSeveral(t *testing.T) {
	ups := map[string]*upstream{}
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		ups[d] = startUpstream(t)
	}
	sp, s, _, _ := setup(t, "", "0@a.example")
	for i := 1; i < 12; i++ {
		addMessage(t, sp, &spool.Envelope{From: "x@example.com", Recipients: rcpts(fmt.Sprintf("%d@%c.example", i, 'a'+i%3))})
	}
	r := &domainRouter{up: ups, dials: map[string]int{}}
	s.opts.Router = r
	s.opts.Connections = 2
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Sent != 12 {
		t.Fatalf("RunOnce = %+v, %v; want 12 sent", sum, err)
	}
	for d, up := range ups {
		up.mu.Lock()
		if up.sessions != 1 || up.txs != 4 {
			t.Errorf("%s: %d sessions, %d messages; want 4 messages over 1 session", d, up.sessions, up.txs)
		}
		up.mu.Unlock()
	}
}

// TestStopReleasesClaims: when Run stops in the middle of a batch, the
// message under way is released Ready within the grace period and the
// rest of the batch is left as it was, unclaimed and untried. The one
// under way, cut short by the stop with no reply, counts as no attempt
// either (TestShut22CutDeliveryNotAnAttempt): the relay's own deadline
// ended it, not the upstream.
func TestStopReleasesClaims(t *testing.T) {
	up := startUpstream(t)
	up.hold, up.inData = make(chan struct{}), make(chan struct{}, 10)
	defer close(up.hold)
	sp, s, _, _ := setup(t, up.addr, "0@example.net")
	for i := 1; i < 5; i++ {
		addMessage(t, sp, &spool.Envelope{From: "x@example.com", Recipients: rcpts(fmt.Sprintf("%d@example.net", i))})
	}
	s.opts.Connections = 1
	s.opts.Grace = 50 * time.Millisecond
	done := runToUpstream(t, s, up)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its grace period")
	}
	ents, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, e := range ents {
		if e.State != spool.Ready {
			t.Errorf("%s is %s after the stop; want ready", e.ID, e.State)
			continue
		}
		env, _, _ := sp.Read(e.ID)
		tried += env.Attempts
	}
	if len(ents) != 5 || tried != 0 {
		t.Errorf("after the stop: %d messages, %d attempts; want all 5 queued, none counted as attempted", len(ents), tried)
	}
}

// TestArrivalKick: a disconnection's kick forwards what this process
// committed, handed off by the spool, without listing the spool; a message
// another process queued waits for a listing (a poll tick, a forced kick).
func TestArrivalKick(t *testing.T) {
	up := startUpstream(t)
	sp, s, clk, _ := setup(t, up.addr, "first@example.net")
	run(t, s)
	waitFor(t, func() bool { return len(up.got()) == 1 })

	other, err := spool.Open(sp.Dir(), nil) // another process's view
	if err != nil {
		t.Fatal(err)
	}
	addMessage(t, other, &spool.Envelope{From: "x@example.com", Recipients: rcpts("other@example.net")})
	addMessage(t, sp, &spool.Envelope{From: "x@example.com", Recipients: rcpts("mine@example.net")})
	ArrivalKick{s}.Kick(false)
	waitFor(t, func() bool { return len(up.got()) == 2 })
	clk.Advance(time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := up.got(); got[1] != "mine@example.net" || len(got) != 2 {
		t.Fatalf("after the arrival kick the upstream got %v; want only this process's message", got)
	}
	s.Kick(false)
	waitFor(t, func() bool { return len(up.got()) == 3 })
}

// TestWaitingUntriedFirst: of messages due at the same moment, those that
// waited untried for a paced destination come out before one that was
// tried (and may get the destination paced again).
func TestWaitingUntriedFirst(t *testing.T) {
	var h waitHeap
	at := t0.Add(time.Minute)
	heap.Push(&h, waitItem{id: "tried", next: at})
	heap.Push(&h, waitItem{id: "later", next: at.Add(time.Second), untried: true})
	heap.Push(&h, waitItem{id: "untried", next: at, untried: true})
	heap.Push(&h, waitItem{id: "earlier", next: at.Add(-time.Second)})
	var got []string
	for h.Len() > 0 {
		got = append(got, heap.Pop(&h).(waitItem).id)
	}
	if want := []string{"earlier", "untried", "tried", "later"}; !cmp.Equal(got, want) {
		t.Errorf("order = %v; want %v", got, want)
	}
}

// TestScanReadsLargeSpool: a listing larger than the scan's chunk is read
// by several goroutines and every message comes back once, whole, in the
// order listed.
func TestScanReadsLargeSpool(t *testing.T) {
	sp, s, _, _ := setup(t, "") // and its one message
	const n = 1300              // two full chunks of 512 and a part
	want := map[string]string{}
	for i := range n {
		to := fmt.Sprintf("%d@d%d.example", i, i%7)
		want[addMessage(t, sp, &spool.Envelope{From: "x@example.com", Recipients: rcpts(to)})] = to
	}
	ents, err := sp.List()
	if err != nil || len(ents) != n+1 {
		t.Fatalf("List = %d, %v; want %d", len(ents), err, n+1)
	}
	var got []string
	s.readListed(ents, func(id string, env *spool.Envelope, err error) {
		if env == nil {
			t.Errorf("%s: not read: %v", id, err)
			return
		}
		got = append(got, id)
		if to, ok := want[id]; ok && (len(env.Recipients) != 1 || env.Recipients[0].Addr != to) {
			t.Errorf("%s: recipients %+v; want %s", id, env.Recipients, to)
		}
	})
	if len(got) != n+1 {
		t.Fatalf("%d messages read; want %d", len(got), n+1)
	}
	for i, e := range ents {
		if got[i] != e.ID {
			t.Fatalf("message %d is %s; want %s (the listing's order)", i, got[i], e.ID)
		}
	}
}

// TestDeliveredWithJournal: with a journal open (as in the daemon), what
// the scheduler delivers is removed by the spool's background removers:
// once the journal is closed, as at shutdown, nothing is left, and the
// upstream got every message once.
func TestDeliveredWithJournal(t *testing.T) {
	up := startUpstream(t)
	sp, s, _, _ := setup(t, up.addr, "0@example.net")
	j, err := sp.OpenJournal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	jdone := make(chan error, 1)
	go func() { jdone <- j.Run(ctx) }()
	const n = 300
	for i := 1; i < n; i++ {
		addMessage(t, sp, &spool.Envelope{From: "x@example.com", Recipients: rcpts(fmt.Sprintf("%d@example.net", i))})
	}
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Sent != n {
		t.Fatalf("RunOnce = %+v, %v; want %d sent", sum, err, n)
	}
	stop()
	if err := <-jdone; err != nil {
		t.Fatal(err)
	}
	if ents, _ := sp.List(); len(ents) != 0 {
		t.Errorf("%d messages left after the journal closed: %+v", len(ents), ents[0])
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.txs != n {
		t.Errorf("upstream got %d messages; want %d", up.txs, n)
	}
}
