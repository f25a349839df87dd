package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRevDur3KillCanonical kills the relay with SIGKILL several times
// while three clients load it with messages of the three sizes (served
// from memory, from a scratch file and its record, the classic path),
// with canonical maps rewriting the envelope and the header, with and
// without a client filter. Every acknowledged message must reach the
// upstream whole, once or more, with its envelope and header mapped.
func TestRevDur3KillCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		withFilter    bool
		kills         int
		pause, spread time.Duration
	}{
		{"no-filter", false, 6, 400 * time.Millisecond, 1200 * time.Millisecond},
		{"filter", true, 6, 400 * time.Millisecond, 1200 * time.Millisecond},
		// Kills soon after each start, while the background recovery
		// and the first checkpoints run.
		{"fast-kills", false, 15, 30 * time.Millisecond, 300 * time.Millisecond},
	} {
		withFilter := tc.withFilter
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			sender := writeFile(t, dir, "sender_canonical", "@example.org  @mapped.example\n", 0o644)
			rcpt := writeFile(t, dir, "recipient_canonical", "crash@example.net  crash@mapped.example\n", 0o644)
			cfg := writeConfig(t, fmt.Sprintf("connections = 3\n[rewrite]\nsender_canonical_maps = [\"hash:%s\"]\n"+
				"recipient_canonical_maps = [\"hash:%s\"]\nlocal_header_rewrite_clients = [\"static:all\"]\n", sender, rcpt))
			var healthy atomic.Bool
			fake := revDur2Flaky(t, &healthy, 200, 10, 3)
			spool := t.TempDir()
			args := []string{"--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
				"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool, "--no-bounces", "--config", cfg}
			if withFilter {
				args = append(args, "--filter", writeFile(t, dir, "filter.sh", "#!/bin/sh\nexit 0\n", 0o755))
			}
			r := startRelay(t, "127.0.0.1", args...)
			var n atomic.Int64
			s := &tagSender{addr: r.addr(), acked: map[string]string{}, body: func(tag string) string {
				switch k := n.Add(1); {
				case k%13 == 0:
					return revDur2Body(tag, 16000)
				case k%4 == 0:
					return revDur2Body(tag, 2500)
				default:
					return revDur2Body(tag, 20)
				}
			}}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			s.start(3, stop, &wg)
			killLoop(tc.kills, tc.pause, tc.spread, killRestart(t, r))
			time.Sleep(time.Second)
			stopLoad(t, stop, &wg, 60*time.Second, "senders")
			healthy.Store(true)
			acked := s.acknowledged(t, 20)
			delivered := revDur2Delivered(t, fake, acked, spool)
			for _, tx := range fake.Transactions() {
				if !tx.Accepted() {
					continue
				}
				if tx.MailFrom != "tagger@mapped.example" || len(tx.Rcpts) != 1 || tx.Rcpts[0].Addr != "crash@mapped.example" {
					t.Errorf("envelope not mapped: from %q to %v", tx.MailFrom, tx.Rcpts)
				}
				if !strings.Contains(string(tx.Data), "From: <sender@mapped.example>") {
					t.Errorf("header not mapped: %.300q", tx.Data)
				}
			}
			t.Logf("%d acknowledged, %d delivered, %d retries", len(acked), len(delivered), s.retries)
			r.stop(20 * time.Second)
		})
	}
}
