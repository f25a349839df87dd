package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud4FlushAfterTransportChange: the administrator's way to send
// deferred mail on after correcting transport_maps is to edit the table
// and run "relaykeeper queue flush" (docs/queue.md: nothing to requeue,
// the next attempt uses the tables in force). The flush's SIGHUP only
// asked the reload goroutine for a reload and rescanned the spool at once,
// so the flushed message was planned with the old table: it went back to
// the old next hop, was deferred again, and waited out its back-off.
func TestAud4FlushAfterTransportChange(t *testing.T) {
	t.Parallel()
	oldHop := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: "451 4.3.0 try elsewhere"}})
	newHop := harness.NewFakeSMTP(t, harness.Script{})
	transport := filepath.Join(t.TempDir(), "transport")
	entry := func(hop *harness.FakeSMTP) []byte {
		return fmt.Appendf(nil, "example.com relay:[%s]:%s\n", hostOf(hop.Addr()), portOf(hop.Addr()))
	}
	if err := os.WriteFile(transport, entry(oldHop), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	cfg := opsConfig(t, fmt.Sprintf("[routing]\ntransport_maps = [\"hash:%s\"]\n[delivery]\nminimal_backoff_time = \"300s\"\n", transport))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", "127.0.0.1:9", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool, "--log")

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.com"}, message("rerouted"))
	if r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("result") == "deferred" }) == nil {
		t.Fatal("no deferral by the old next hop")
	}

	// The worker lets go of the message after its deferral line.
	if !waitFor(5*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(spool, "*.envelope"))
		return len(m) == 1
	}) {
		t.Fatal("the deferred message was not released to the queue")
	}
	if err := os.WriteFile(transport, entry(newHop), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := opsCmd(t, "", "queue", "flush", "--spool-dir", spool); code != 0 {
		t.Fatalf("queue flush: exit %d\n%s%s", code, out, errOut)
	}
	if !waitFor(4*time.Second, func() bool { return len(newHop.Transactions()) > 0 }) {
		var lines []string
		for _, e := range r.events("delivery") {
			lines = append(lines, e.Get("result")+" "+e.Get("relay")+" "+e.Get("reply"))
		}
		t.Fatalf("the message flushed after the table change did not go to the new next hop; deliveries:\n%s",
			strings.Join(lines, "\n"))
	}
}
