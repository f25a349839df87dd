package bench

import (
	"bytes"
	"net/smtp"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// BenchmarkRestart starts the relaykeeper binary (RELAYKEEPER_BIN) on a
// spool of RK_BENCH_MESSAGES (100,000) queued messages, one in a hundred a
// stale claim left by a killed forwarder, and measures how long it takes
// until a new message is accepted with 250 (the target: within 2 s) and
// until recovery, which runs in the background, has finished.
//
//	make build && RELAYKEEPER_BIN=$PWD/bin/relaykeeper go test -run XXX -bench Restart -benchtime 1x -timeout 30m ./bench/
func BenchmarkRestart(b *testing.B) {
	bin := relaykeeperBin(b)
	n := envInt("RK_BENCH_MESSAGES", 100000)
	dir := b.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool"), nil)
	if err != nil {
		b.Fatal(err)
	}
	sp.SetSync(false)
	t0 := time.Now()
	i := 0
	queueMessages(b, sp, n, 1000, func(id string) {
		if i++; i%100 == 0 {
			os.Rename(sp.EnvelopePath(id, spool.Ready), sp.EnvelopePath(id, spool.Claimed))
		}
	})
	b.Logf("queued %d messages in %v", n, time.Since(t0).Round(time.Millisecond))

	for range b.N {
		os.Remove(filepath.Join(dir, "log"))
		start := time.Now()
		// No --forward-to: nothing is delivered, so the spool stays as
		// big for the next round.
		addr, cmd := startRelaykeeper(b, bin, dir, "--as-server")
		var accepted time.Duration
		for deadline := start.Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if err := smtp.SendMail(addr, nil, "a@example.org", []string{"b@example.net"}, []byte("Subject: x\r\n\r\nrestart\r\n")); err == nil {
				accepted = time.Since(start)
				break
			}
		}
		var recovered time.Duration
		for deadline := start.Add(5 * time.Minute); accepted > 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if log, _ := os.ReadFile(filepath.Join(dir, "log")); bytes.Contains(log, []byte("spool recovered")) {
				recovered = time.Since(start)
				break
			}
		}
		cmd.Process.Kill() // only the process started here, by PID
		cmd.Wait()
		if accepted == 0 || recovered == 0 {
			b.Fatalf("accepted after %v, recovered after %v (0: never)", accepted, recovered)
		}
		b.ReportMetric(accepted.Seconds(), "s-to-accept")
		b.ReportMetric(recovered.Seconds(), "s-to-recovered")
		b.Logf("spool of %d messages: first message accepted after %v, recovery finished after %v",
			n, accepted.Round(time.Millisecond), recovered.Round(time.Millisecond))
	}
}
