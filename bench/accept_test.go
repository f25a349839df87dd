package bench

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// BenchmarkAccept measures the SMTP server alone, in one process, so that
// a CPU profile shows where an acceptance spends its time: store (the
// spool, with its journal and fsync on, as in production) and proxy (to
// smtp-sink), with 1, 10 and 100 client sessions of 4 KiB messages, each
// session sending several messages.
//
//	go test -run XXX -bench Accept -benchtime 2000x -cpuprofile /tmp/accept.prof ./bench/
//	go tool pprof -top -nodecount 40 /tmp/accept.prof
//
// RK_BENCH_SIZE sets the message size in bytes (default 4096).
// RK_BENCH_NO_JOURNAL=1 runs the store without its journal (every message
// fsyncs its own files), for comparison.
func BenchmarkAccept(b *testing.B) {
	size := 4096
	if v, err := strconv.Atoi(os.Getenv("RK_BENCH_SIZE")); err == nil && v > 0 {
		size = v
	}
	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", size/80) + "\r\n"
	for _, mode := range []string{"store", "proxy"} {
		for _, sessions := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/s%d", mode, sessions), func(b *testing.B) {
				sp, err := spool.Open(b.TempDir(), nil)
				if err != nil {
					b.Fatal(err)
				}
				opts := smtpd.Options{Domain: "relay.bench", Spool: sp, IdleTimeout: time.Minute,
					MaxMessageSize: 10 << 20, MaxRecipients: 100}
				if mode == "proxy" {
					sink := harness.StartSink(b, harness.SinkOptions{})
					opts.Proxy = &smtpd.Proxy{Addr: sink.Addr(), Dialer: &remote.Dialer{Options: remote.Options{Helo: "relay.bench"}}}
				} else if os.Getenv("RK_BENCH_NO_JOURNAL") == "" {
					// RK_BENCH_NO_JOURNAL=1: every message syncs its
					// own files, for comparison.
					j, err := sp.OpenJournal()
					if err != nil {
						b.Fatal(err)
					}
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan struct{})
					go func() { defer close(done); j.Run(ctx) }()
					b.Cleanup(func() { cancel(); <-done })
				}
				srv := smtpd.New(opts)
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				go srv.Serve(l)
				b.Cleanup(func() { srv.Shutdown(context.Background()) })

				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, sessions)
				b.ResetTimer()
				for range sessions {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := sendMany(l.Addr().String(), body, &next, int64(b.N)); err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// sendMany sends messages on one connection, ten per session, until n
// have been taken from next by all senders together.
func sendMany(addr, body string, next *atomic.Int64, n int64) error {
	for next.Load() < n {
		c, err := smtp.Dial(addr)
		if err != nil {
			return err
		}
		for range 10 {
			if next.Add(1) > n {
				break
			}
			if err := c.Mail("bench@example.org"); err != nil {
				return err
			}
			if err := c.Rcpt("rcpt@sink.example"); err != nil {
				return err
			}
			w, err := c.Data()
			if err != nil {
				return err
			}
			if _, err := w.Write([]byte(body)); err != nil {
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		c.Quit()
	}
	return nil
}
