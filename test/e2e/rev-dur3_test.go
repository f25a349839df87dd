package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
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

// TestRevDur3KillEMailRelaySpool takes over a spool that E-MailRelay 2.6
// left (its file names, its envelope with a folded client certificate,
// claimed and failed messages among them) and is killed with SIGKILL
// while it forwards them to a slow, flaky upstream. Every message must
// arrive whole, and nothing be quarantined: each was acknowledged by
// E-MailRelay.
func TestRevDur3KillEMailRelaySpool(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	fake := revDur2Flaky(t, &healthy, 150, 15, 5)
	spool := t.TempDir()
	acked := map[string]string{}
	const n = 150
	for i := range n {
		tag := fmt.Sprintf("crash-tag-%06d", i)
		id := fmt.Sprintf("emailrelay.4242.%d.%d", time.Now().Add(-time.Hour).Unix(), i)
		acked[tag] = id
		lines := 20
		if i%10 == 0 {
			lines = 3000
		}
		body := strings.ReplaceAll("Received: from client by emailrelay; Sat, 05 Dec 2026 10:00:00 +0000\n"+revDur2Body(tag, lines), "\n", "\r\n")
		env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 8bit\r\nX-MailRelay-From: tagger@example.org\r\n" +
			"X-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: crash@example.net\r\nX-MailRelay-Authentication: \r\n" +
			"X-MailRelay-Client: 127.0.0.1:4242\r\nX-MailRelay-ClientCertificate: -----BEGIN CERTIFICATE-----\r\n" +
			" MIIBszCCAVmgAwIBAgIUX\r\n -----END CERTIFICATE-----\r\nX-MailRelay-MailFromAuthIn: \r\n" +
			"X-MailRelay-MailFromAuthOut: \r\nX-MailRelay-ForwardTo: \r\nX-MailRelay-ForwardToAddress: \r\n" +
			"X-MailRelay-ClientAccountSelector: \r\nX-MailRelay-Utf8MailboxNames: 0\r\nX-MailRelay-End: 1\r\n"
		suffix := map[int]string{1: ".busy", 2: ".bad"}[i%7]
		if suffix == ".bad" {
			env += "X-MailRelay-Reason: 451 greylisted\r\nX-MailRelay-ReasonCode: 451\r\n"
		}
		writeFile(t, spool, id+".content", body, 0o600)
		writeFile(t, spool, id+".envelope"+suffix, env, 0o600)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--interface", "127.0.0.1", "--spool-dir", spool, "--no-bounces", "--config", writeConfig(t, "connections = 3\n"))
	killLoop(6, 300*time.Millisecond, 700*time.Millisecond, killRestart(t, r))
	healthy.Store(true)
	// The failed ones wait for a retry, as E-MailRelay's unfail-all. It
	// races with the relay's deliveries: a message delivered between its
	// listing and its retry is "not found", and the command exits 1.
	if out, err := exec.Command(harness.Binary(t), "queue", "retry", "--all", "--spool-dir", spool).CombinedOutput(); err != nil &&
		strings.Count(string(out), "not found: no such message") == 0 {
		t.Fatalf("queue retry --all: %v: %s", err, out)
	}
	delivered := revDur2Delivered(t, fake, acked, spool)
	if q := quarantined(t, spool); len(q) > 0 {
		t.Errorf("quarantined %v; want nothing", q)
	}
	t.Logf("%d messages, %d delivered, %d transactions", n, len(delivered), len(fake.Transactions()))
	r.stop(20 * time.Second)
}
