package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
	"golang.org/x/sys/unix"
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
// The sink's own pace is measured first and again after the drain, in
// the same run, and the drain is compared with their mean: smtp-source
// sends as many messages (at most 20,000) of the same size into the same
// kind of sink over as many sessions as the scheduler has workers, each
// session carrying several messages; "x-sink" is the drain's pace over
// it. The sink keeps its dump files on a tmpfs (sinkDumpDir), and the
// queued messages are written back before the drain starts, as a backlog
// is in production. CPU is counted over the drain alone: "relay-cpu-us/msg" is this
// process's user+system time per message (the scheduler, the spool and
// the SMTP client), "sink-cpu-us/msg" smtp-sink's. RK_BENCH_CPUPROFILE
// names a file for a CPU profile of the drain alone (-cpuprofile also
// covers the queueing).
//
//	go test -run XXX -bench SchedulerDrain -benchtime 1x -timeout 30m ./bench/
//	RK_BENCH_MESSAGES=20000 RK_BENCH_CPUPROFILE=/tmp/drain.prof go test -run XXX -bench SchedulerDrain -benchtime 1x ./bench/
func BenchmarkSchedulerDrain(b *testing.B) {
	n := envInt("RK_BENCH_MESSAGES", 100000)
	dests := envInt("RK_BENCH_DESTINATIONS", 1000)
	workers := envInt("RK_BENCH_WORKERS", 20)
	for range b.N {
		b.StopTimer()
		sink := harness.StartSink(b, harness.SinkOptions{DumpDir: sinkDumpDir()})
		sinkRate := sinkPace(b, sink.Addr(), min(n, 20000), workers)
		sinkPID := childPID(b, "smtp-sink")
		sp, err := spool.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		sp.SetSync(false)
		t0 := time.Now()
		queueMessages(b, sp, n, dests, nil)
		b.Logf("queued %d messages to %d destinations in %v", n, dests, time.Since(t0).Round(time.Millisecond))
		// A backlog in production was synced when it was accepted: the
		// drain does not pay for writing back the queueing's files.
		syncDir(b, sp.Dir())
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
		stopProfile := startProfile(b, os.Getenv("RK_BENCH_CPUPROFILE"), pprof.StartCPUProfile, pprof.StopCPUProfile)
		// The execution trace (go tool trace) shows where workers wait,
		// which the CPU profile does not.
		stopTrace := startProfile(b, os.Getenv("RK_BENCH_TRACE"), trace.Start, trace.Stop)
		relay0, sink0 := selfCPU(), procCPU(sinkPID)
		b.StartTimer()
		start := time.Now()
		sum, err := s.RunOnce(context.Background())
		elapsed := time.Since(start)
		b.StopTimer()
		relayCPU, sinkCPU := selfCPU()-relay0, procCPU(sinkPID)-sink0
		stopProfile()
		stopTrace()
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
		// The sink's pace moves by a third within minutes on this
		// machine: it is measured again after the drain, and the drain
		// is compared with the mean of the two.
		sinkRate = meanPace(sinkRate, sinkPace(b, sink.Addr(), min(n, 20000), workers))
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(rate/sinkRate, "x-sink")
		b.ReportMetric(float64(relayCPU.Microseconds())/float64(n), "relay-cpu-us/msg")
		b.ReportMetric(float64(sinkCPU.Microseconds())/float64(n), "sink-cpu-us/msg")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(router.dials.Load()), "sessions")
		b.Logf("drained %d messages to %d destinations in %v (%.0f msgs/s, %.2f× the sink's %.0f), relay CPU %v, sink CPU %v, peak heap %.1f MiB, %d sessions",
			n, dests, elapsed.Round(time.Millisecond), rate, rate/sinkRate, sinkRate, relayCPU.Round(time.Millisecond), sinkCPU.Round(time.Millisecond),
			float64(peak.Load())/(1<<20), router.dials.Load())
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

// sinkPace sends n messages of the benchmark's size into the sink at addr
// with smtp-source over sessions sessions, each carrying several
// messages, and returns the messages per second it took them at.
func sinkPace(b *testing.B, addr string, n, sessions int) float64 {
	b.Helper()
	start := time.Now()
	out, err := harness.Source(b, harness.SourceOptions{Addr: addr, Messages: n, Sessions: sessions, Size: 4000,
		Reuse: true, Timeout: 5 * time.Minute})
	if err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	rate := float64(n) / time.Since(start).Seconds()
	b.Logf("the sink alone: %d messages over %d sessions at %.0f msgs/s", n, sessions, rate)
	return rate
}

// meanPace is the mean of the sink's pace before and after a drain.
func meanPace(before, after float64) float64 {
	return (before + after) / 2
}

// childPID is the pid of this process's child named comm (as in
// /proc/PID/comm), or 0.
func childPID(b *testing.B, comm string) int {
	b.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so the
		// fields are counted from the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		name := string(stat[strings.IndexByte(string(stat), '(')+1 : i])
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 1 && name == comm && f[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	b.Logf("no child process %s found; its CPU is not counted", comm)
	return 0
}

// procCPU is a process's user+system time so far (0 if pid is 0 or gone).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// utime and stime are fields 14 and 15 of stat(5), in clock ticks
	// (100 a second on Linux).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU is this process's user+system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile starts a profile or trace into file with start, if a file
// is named, and returns what stops it.
func startProfile(b *testing.B, file string, start func(io.Writer) error, stop func()) func() {
	b.Helper()
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := start(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		stop()
		f.Close()
	}
}

// BenchmarkPostfixDrain is BenchmarkSchedulerDrain's yardstick: a private
// Postfix instance drains as many queued messages (RK_BENCH_MESSAGES, at
// most 20,000, since they are queued through its smtpd at its own pace)
// of the same size into the same kind of sink, measured the same way. Its
// queue fills while defer_transports holds the smtp transport back;
// postqueue -f then releases it all at once (a flush overrides
// defer_transports), and the drain ends when the queue is empty. Postfix
// sends everything to the one relayhost with at most 20 sessions
// (default_destination_concurrency_limit), as many as the scheduler has
// workers, and reuses them while a backlog waits
// (smtp_connection_cache_on_demand). "postfix-cpu-us/msg" counts every
// process of the instance.
//
//	go test -run XXX -bench PostfixDrain -benchtime 1x -timeout 30m ./bench/
func BenchmarkPostfixDrain(b *testing.B) {
	n := min(envInt("RK_BENCH_MESSAGES", 20000), 20000)
	const sessions = 20
	for range b.N {
		b.StopTimer()
		sink := harness.StartSink(b, harness.SinkOptions{DumpDir: sinkDumpDir()})
		sinkRate := sinkPace(b, sink.Addr(), n, sessions)
		sinkPID := childPID(b, "smtp-sink")
		pf := harness.StartPostfix(b, harness.PostfixOptions{Relayhost: harness.RelayhostFor(sink.Addr()),
			MainCF: []string{"defer_transports = smtp", "queue_run_delay = 1h", "minimal_backoff_time = 1h", "maximal_backoff_time = 1h"}})
		t0 := time.Now()
		out, err := harness.Source(b, harness.SourceOptions{Addr: pf.Addr(), Messages: n, Sessions: sessions, Size: 4000,
			From: "bench@example.org", To: "u@d.example", Reuse: true, Timeout: 10 * time.Minute})
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		waitFor(b, 5*time.Minute, "all messages deferred", func() bool { return pf.QueueCountOf("deferred") >= n })
		b.Logf("queued %d messages in Postfix in %v", n, time.Since(t0).Round(time.Millisecond))

		cpu0, sink0 := pf.CPU(), procCPU(sinkPID)
		b.StartTimer()
		start := time.Now()
		pf.Flush()
		waitFor(b, 10*time.Minute, "an empty queue", func() bool { return pf.QueueCount() == 0 })
		elapsed := time.Since(start)
		b.StopTimer()
		pfCPU, sinkCPU := pf.CPU()-cpu0, procCPU(sinkPID)-sink0
		if got := sink.Count(); got < 2*n {
			b.Fatalf("the sink has %d messages; want %d (%d from smtp-source, %d from Postfix)", got, 2*n, n, n)
		}
		// A delivery over a cached session says conn_use=N (N > 1).
		logged := pf.MailLog()
		sent := strings.Count(logged, "status=sent")
		sessionsOpened := sent - strings.Count(logged, "conn_use=")
		rate := float64(n) / elapsed.Seconds()
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(rate/sinkRate, "x-sink")
		b.ReportMetric(float64(sessionsOpened), "sessions")
		b.ReportMetric(float64(pfCPU.Microseconds())/float64(n), "postfix-cpu-us/msg")
		b.ReportMetric(float64(sinkCPU.Microseconds())/float64(n), "sink-cpu-us/msg")
		b.Logf("Postfix drained %d messages in %v (%.0f msgs/s, %.2f× the sink's %.0f), Postfix CPU %v, sink CPU %v",
			n, elapsed.Round(time.Millisecond), rate, rate/sinkRate, sinkRate, pfCPU.Round(time.Millisecond), sinkCPU.Round(time.Millisecond))
		pf.Stop()
	}
}

// waitFor polls cond every 250 ms and fails the benchmark, naming what,
// after timeout. Each poll walks Postfix's queue directories, 20,000 files
// at first: polled more often, the walk would take CPU from the Postfix
// it times (±0.25 s on a drain of about 50 s).
func waitFor(b *testing.B, timeout time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sinkDumpDir is where the drains' sink keeps its dump files:
// RK_BENCH_SINK_DIR, else /dev/shm when it is a tmpfs, else the default
// temporary directory. The sink stands for another machine; on the
// relay's own disk its dump files would compete with the spool for the
// same file system (ext4 without a journal makes each new inode skip
// the ones deleted in the last minute, and the checkpoint's syncfs would
// write back the sink's files as well).
func sinkDumpDir() string {
	if d := os.Getenv("RK_BENCH_SINK_DIR"); d != "" {
		return d
	}
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		return "/dev/shm"
	}
	return ""
}

// syncDir writes back every file of the file system that holds dir.
func syncDir(b *testing.B, dir string) {
	b.Helper()
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}
