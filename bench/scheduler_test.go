package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// sinkRouter sends every destination to one smtp-sink, keeping 1,000
// destination keys so that per-destination limits and fairness are what
// the scheduler works with.
type sinkRouter struct {
	addr  string
	dials atomic.Int64
}

func (r *sinkRouter) Route(_, rcpt string) route.Destination {
	_, dom, _ := strings.Cut(rcpt, "@")
	return route.Destination{Key: dom, ConcurrencyLimit: 2}
}

func (r *sinkRouter) Dial(ctx context.Context, rt route.Destination) (*remote.Conn, string, error) {
	r.dials.Add(1)
	c, err := remote.Dial(ctx, r.addr, remote.Options{Helo: "bench.test"})
	return c, rt.Key, err
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSchedulerDrain queues RK_BENCH_MESSAGES (100,000) messages to
// RK_BENCH_DESTINATIONS (1,000) destinations and measures how long the
// scheduler takes to drain them into smtp-sink, with fsync on as in
// production, and the heap at its peak.
//
//	go test -run XXX -bench SchedulerDrain -benchtime 1x -timeout 30m ./bench/
func BenchmarkSchedulerDrain(b *testing.B) {
	n := envInt("RK_BENCH_MESSAGES", 100000)
	dests := envInt("RK_BENCH_DESTINATIONS", 1000)
	workers := envInt("RK_BENCH_WORKERS", 20)
	for range b.N {
		b.StopTimer()
		sink := harness.StartSink(b, harness.SinkOptions{})
		sp, err := spool.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		sp.SetSync(false)
		t0 := time.Now()
		queueMessages(b, sp, n, dests, nil)
		b.Logf("queued %d messages to %d destinations in %v", n, dests, time.Since(t0).Round(time.Millisecond))
		sp.SetSync(true)
		// As in the relay: removals are noted in the journal, which a
		// checkpoint makes durable once a second, rather than each
		// followed by a directory fsync.
		j, err := sp.OpenJournal()
		if err != nil {
			b.Fatal(err)
		}
		jctx, jstop := context.WithCancel(context.Background())
		jdone := make(chan struct{})
		go func() { defer close(jdone); j.Run(jctx) }()
		router := &sinkRouter{addr: sink.Addr()}
		s := deliver.New(deliver.Options{Spool: sp, Router: router, Connections: workers, MessagesPerConnection: 100,
			MinBackoff: time.Minute, MaxBackoff: time.Hour})

		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		b.StartTimer()
		start := time.Now()
		sum, err := s.RunOnce(context.Background())
		elapsed := time.Since(start)
		b.StopTimer()
		close(stop)
		jstop()
		<-jdone
		if err != nil || sum.Sent != n {
			b.Fatalf("RunOnce = %+v, %v; want all %d sent", sum, err, n)
		}
		ents, _ := sp.List()
		if len(ents) != 0 {
			b.Fatalf("%d messages left in the spool", len(ents))
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(router.dials.Load()), "sessions")
		b.Logf("drained %d messages to %d destinations in %v (%.0f msgs/s), peak heap %.1f MiB, %d sessions",
			n, dests, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), float64(peak.Load())/(1<<20), router.dials.Load())
	}
}

// queueMessages puts n messages of 4 KB into sp, to dests destinations,
// and calls each (if not nil) with every new message's id.
func queueMessages(b *testing.B, sp *spool.Spool, n, dests int, each func(id string)) {
	b.Helper()
	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 50)
	t0 := time.Now()
	for i := range n {
		w, err := sp.Create(t0)
		if err != nil {
			b.Fatal(err)
		}
		io.WriteString(w, body)
		env := &spool.Envelope{From: "bench@example.org", Arrival: t0, Client: "127.0.0.1:1",
			Recipients: []spool.Recipient{{Addr: fmt.Sprintf("u%d@d%d.example", i, i%dests), Status: spool.Pending}}}
		if err := w.Prepare(env); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(false); err != nil {
			b.Fatal(err)
		}
		if each != nil {
			each(w.ID())
		}
	}
}
