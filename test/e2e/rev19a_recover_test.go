package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev19aRecoverUnreadableClaim: as TestDur19RecoverUnreadableEnvelope,
// but the message was being delivered when the relay died: its envelope
// is a stale claim (.envelope.busy). Recovery cannot open it once (EIO)
// and leaves it in place "for the forwarders to try again"; but the
// forwarders take only ready messages, so the acknowledged message waited,
// claimed by nobody, until the next start. The running relay must deliver
// it.
func TestRev19aRecoverUnreadableClaim(t *testing.T) {
	t.Parallel()
	needStrace(t)
	spool := t.TempDir()
	up := harness.NewFakeSMTP(t, harness.Script{})
	cfg := writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n")
	store := startRelay(t, "127.0.0.1", "--as-server", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)
	// Over 1 MiB: its own files, an envelope to open at start.
	s := dur19Send(t, store.addr(), "dur19-rev19a-claim", 4, func() bool { return false })
	store.stop(15 * time.Second)
	var id string
	for tag, qid := range s.acked {
		if strings.HasSuffix(tag, "-3") {
			id = qid
		}
	}
	env := filepath.Join(spool, id+".envelope")
	busy := env + ".busy"
	if err := os.Rename(env, busy); id == "" || err != nil {
		t.Fatalf("no envelope of the large message to claim (%q): %v; acked %v", id, err, s.acked)
	}
	relayArgs := []string{"--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool}
	args := append([]string{"-f", "-qq", "-o", "/dev/null", "-P", busy, "-e", "trace=openat",
		"-e", "inject=openat:error=EIO:when=1", "--", harness.Binary(t)}, relayArgs...)
	traced := &relay{t: t, bin: "strace", args: args, host: "127.0.0.1", port: store.port, spool: spool}
	traced.restart()
	defer func() {
		for _, pid := range processTree(traced.current().PID(), 2)[1:] {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		traced.current().Wait(10 * time.Second)
	}()
	checkDelivered(t, s, up, spool)
	if t.Failed() {
		t.Logf("stderr:\n%s", lastLines(traced.stderr(), 30))
	}
}
