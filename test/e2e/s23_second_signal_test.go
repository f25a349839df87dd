package e2e

import (
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestS23SecondSignalStopsNow: a second SIGTERM (or Ctrl-C) during the
// shutdown grace cuts it short, as an operator who presses Ctrl-C twice
// expects: the session in its message text hears 421 and the delivery
// waiting at the upstream's final reply is cut (no attempt counted), and
// the relay exits 0 at once. It waited out both graces (a minute each
// here) whatever it was sent.
func TestS23SecondSignalStopsNow(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 2 * time.Minute}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"60s\"\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("cut delivery")).Final)
	waitSpool(t, spool, 10*time.Second, id+" claimed (.busy)", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.busy"})
	})
	c := inData(t, r.addr())
	defer c.Close()
	io.WriteString(c.conn, "Subject: cut\r\n\r\nfirst line\r\n")
	p := r.current()
	p.Signal(syscall.SIGTERM)
	if _, err := p.Wait(2 * time.Second); err == nil {
		t.Fatalf("the relay did not wait for its grace after one SIGTERM:\n%s", p.Stderr())
	}
	p.Signal(syscall.SIGTERM)
	start := time.Now()
	code, err := p.Wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after a second SIGTERM: exit %d, %v; want 0 within seconds\n%s", code, err, p.Stderr())
	}
	t.Logf("exited %v after the second SIGTERM", time.Since(start).Round(time.Millisecond))
	io.WriteString(c.conn, ".\r\n")
	if rep, err := c.read(); rep.code() != 421 {
		t.Errorf("the session in its text heard %q, %v; want 421", rep, err)
	}
	if !strings.Contains(p.Stderr(), "stopping now") {
		t.Errorf("the log does not say the second signal cut the grace:\n%s", p.Stderr())
	}
	if got := spoolFiles(t, spool)[id]; !slices.Equal(got, []string{"content", "envelope"}) {
		t.Errorf("the cut delivery's message: %v; want ready again", got)
	}
}
