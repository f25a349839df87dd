package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSigtermExits: SIGTERM makes the relay exit 0 within the shutdown
// grace, also with an idle client still connected, and removes its pid
// file.
func TestSigtermExits(t *testing.T) {
	t.Parallel()
	for _, idleClient := range []bool{false, true} {
		t.Run("idle client "+strconv.FormatBool(idleClient), func(t *testing.T) {
			t.Parallel()
			pidFile := filepath.Join(t.TempDir(), "relaykeeper.pid")
			const grace = 2 * time.Second
			r := startRelay(t, "127.0.0.1", "--as-server", "--pid-file", pidFile,
				"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n"),
				"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			waitPidFile(t, pidFile, r.current().PID())
			if idleClient {
				c, greet, err := dialSMTP(r.addr())
				if err != nil {
					t.Fatalf("connect: %v (%q)", err, greet)
				}
				defer c.Close()
				c.cmd("EHLO idle.e2e.test")
			}
			p := r.current()
			p.Signal(syscall.SIGTERM)
			code, err := p.Wait(grace + 3*time.Second)
			if err != nil || code != 0 {
				t.Fatalf("after SIGTERM: exit %d, %v; want 0 within the %v grace (and a little)", code, err, grace)
			}
			if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
				t.Errorf("pid file after exit: stat error %v; want it removed", err)
			}
		})
	}
}

// TestSigtermDuringDelivery: a message being delivered to an upstream that
// stalls at the final dot when SIGTERM comes is ready again (not .busy)
// once the relay has exited 0.
func TestSigtermDuringDelivery(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 25 * time.Second}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n"),
		"--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("stalled")).Final)
	waitSpool(t, spool, 10*time.Second, id+" claimed (.busy)", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.busy"})
	})
	waitFor(5*time.Second, func() bool { return fake.Connections() == 1 })

	p := r.current()
	p.Signal(syscall.SIGTERM)
	code, err := p.Wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v; want 0", code, err)
	}
	if got := spoolFiles(t, spool); !slices.Equal(got[id], []string{"content", "envelope"}) || len(got) != 1 {
		t.Errorf("spool after exit = %v; want only %s ready (.content + .envelope)", got, id)
	}
}

// TestSighupRescans: SIGHUP keeps the relay running and makes it rescan
// the spool: a message that another process (a second, store-only relay)
// put into the shared spool is forwarded at once, though no client of
// this relay disconnected.
func TestSighupRescans(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	spool := t.TempDir()
	// No --poll: only a disconnect or SIGHUP starts forwarding.
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	other := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, other.addr(), "alice@example.org", []string{"bob@example.net"}, message("rescan")).Final)
	time.Sleep(1500 * time.Millisecond)
	if n := sink.Count(); n != 0 {
		t.Fatalf("sink has %d messages before SIGHUP, with nothing to trigger forwarding; want 0", n)
	}

	p := r.current()
	p.Signal(syscall.SIGHUP)
	sink.WaitCount(t, 1, 5*time.Second)
	if got := receivedID(sink.Messages()[0].Data); got != id {
		t.Errorf("sink got %q; want %s", got, id)
	}
	waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	if !p.Running() {
		code, err := p.Wait(time.Second)
		t.Fatalf("relaykeeper exited after SIGHUP: %d, %v", code, err)
	}
	// Still serving after SIGHUP.
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.net"}, message("after sighup"))
	sink.WaitCount(t, 2, 5*time.Second)
	r.stop(15 * time.Second)
	other.stop(15 * time.Second)
}

// TestUnfailThenSighup: docs/spool.md's way to retry a failed message:
// rename ID.envelope.bad back to ID.envelope (E-MailRelay's unfail-all)
// and send SIGHUP. The message must then be tried again and delivered.
func TestUnfailThenSighup(t *testing.T) {
	t.Parallel()
	const refused = "550 5.7.1 Not now, not ever"
	fake := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: refused}})
	spool := t.TempDir()
	// --no-bounces: this is about retrying a failed message, and a notice
	// to the sender would be one more message in the spool.
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", writeConfig(t, ""), "--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("unfail")).Final)
	waitSpool(t, spool, 10*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})

	fake.SetScript(harness.Script{})
	if err := os.Rename(filepath.Join(spool, id+".envelope.bad"), filepath.Join(spool, id+".envelope")); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	refailed := func() bool {
		_, err := os.Stat(filepath.Join(spool, id+".envelope.bad"))
		return err == nil
	}
	waitFor(10*time.Second, func() bool { return len(acceptedTx(fake)) == 1 || refailed() })
	if len(acceptedTx(fake)) != 1 {
		st, env := readAnyEnvelope(t, spool, id)
		if st == "envelope.bad" && fake.Connections() == 1 {
			t.Fatalf("unfailed message (.envelope.bad renamed to .envelope, then SIGHUP) was moved straight "+
				"back to .envelope.bad without contacting the upstream (connections: %d); attempts %s, %d Reason lines:\n%s",
				fake.Connections(), env.get("X-Relaykeeper-Attempts"), len(env.all("X-MailRelay-Reason")), env)
		}
		t.Fatalf("unfailed message not delivered within 10s of SIGHUP; now %s:\n%s", st, env)
	}
	r.waitEvent("delivery", 5*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("result") == "sent"
	})
	waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
}

// TestBadCommandLine: a configuration mistake or an unknown switch is exit
// status 2 with the place of the mistake on standard error.
func TestBadCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.toml")
	os.WriteFile(unknownKey, []byte("[smtp]\nport = 2525\nshutdown_grase = \"5s\"\n"), 0o644)
	badValue := filepath.Join(dir, "badvalue.toml")
	os.WriteFile(badValue, []byte("# fast retries\n[delivery]\nminimal_backoff_time = \"soon\"\n"), 0o644)
	spool := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown key", []string{"--as-server", "--config", unknownKey}, unknownKey + ":3:"},
		{"bad duration", []string{"--as-server", "--config", badValue}, badValue + ":3:"},
		{"unknown switch", []string{"--as-server", "--frobnicate"}, "--frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append(tt.args, "--spool-dir", spool, "--interface", "127.0.0.1", "--port", strconv.Itoa(harness.FreePort(t)))
			p := harness.Start(t, harness.Binary(t), args...)
			code, err := p.Wait(10 * time.Second)
			if err != nil || code != 2 || !strings.Contains(p.Stderr(), tt.want) {
				t.Errorf("relaykeeper %v: exit %d, %v, stderr %q; want exit 2 and %q in stderr", args, code, err, p.Stderr(), tt.want)
			}
		})
	}
}
