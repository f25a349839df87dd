package bench

import (
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// BenchmarkLatency measures, for one client sending one message at a time,
// the end-to-end latency: from connecting to the relay until smtp-sink has
// the whole message. Paths: direct (the limit), store-and-forward
// (--forward-on-disconnect), proxy, and a private Postfix (relayhost = the
// sink), in the same run. RK_BENCH_LATENCY_MSGS (default 100) messages per
// path; reports p50 and p90 in milliseconds.
//
//	make build && RELAYKEEPER_BIN=$PWD/bin/relaykeeper go test -run XXX -bench Latency -benchtime 1x ./bench/
func BenchmarkLatency(b *testing.B) {
	bin := relaykeeperBin(b)
	n := envInt("RK_BENCH_LATENCY_MSGS", 100)
	msg := []byte("Subject: latency\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 4096/80))
	for _, path := range []string{"direct", "store", "proxy", "postfix"} {
		b.Run(path, func(b *testing.B) {
			for range b.N {
				sink := harness.StartSink(b, harness.SinkOptions{})
				addr := sink.Addr()
				switch path {
				case "store":
					addr, _ = startRelaykeeper(b, bin, b.TempDir(), "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect")
				case "proxy":
					addr, _ = startRelaykeeper(b, bin, b.TempDir(), "--as-proxy", sink.Addr())
				case "postfix":
					addr = harness.StartPostfix(b, harness.PostfixOptions{Relayhost: harness.RelayhostFor(sink.Addr())}).Addr()
				}
				var lat []time.Duration
				for i := range n {
					t0 := time.Now()
					if err := smtp.SendMail(addr, nil, "a@example.org", []string{"b@sink.example"}, msg); err != nil {
						b.Fatalf("%s: message %d: %v", path, i, err)
					}
					for sink.Count() < i+1 {
						if time.Since(t0) > 30*time.Second {
							b.Fatalf("%s: message %d not at the sink after 30 s", path, i)
						}
						time.Sleep(200 * time.Microsecond)
					}
					lat = append(lat, time.Since(t0))
				}
				slices.Sort(lat)
				p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p90.Microseconds())/1000, "p90-ms")
			}
		})
	}
}

// startRelaykeeper starts the binary on a free loopback port, with the
// spool in dir and its log (with --log: informational lines too) in
// dir/log, ends it (by PID) when the benchmark ends, and returns its
// address once it listens, and the process.
func startRelaykeeper(b *testing.B, bin, dir string, args ...string) (string, *exec.Cmd) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	logFile := filepath.Join(dir, "log")
	args = append(args, "--log", "--port", port, "--interface", "127.0.0.1", "--spool-dir", filepath.Join(dir, "spool"),
		"--log-file", logFile)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if b.Failed() {
			log, _ := os.ReadFile(logFile)
			b.Logf("relaykeeper's log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, cmd
		}
		if time.Now().After(deadline) {
			b.Fatalf("relaykeeper %v: not listening after 60 s", args)
		}
	}
}

// relaykeeperBin is the binary under test, RELAYKEEPER_BIN.
func relaykeeperBin(b *testing.B) string {
	bin := os.Getenv("RELAYKEEPER_BIN")
	if bin == "" {
		b.Skip("RELAYKEEPER_BIN is not set (make build)")
	}
	return bin
}
