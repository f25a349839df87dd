package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev20aBackupMXNoFallbackRelay: as in TestQ20BackupMXPrimaryDown, the
// relay is a domain's backup MX and the primary is down, and the relay has
// an smtp_fallback_relay. Since q20 the primary's failure is the outcome,
// not a loop, and the mail went to the fallback relay, which finds the
// primary down too and sends it back to its backup MX, the relay: the loop
// docs/routing.md says fallback relays are not used after ("so that a
// backup MX does not loop"). The mail waits for the primary.
func TestRev20aBackupMXNoFallbackRelay(t *testing.T) {
	t.Parallel()
	const primary, self = "127.0.72.61", "127.0.72.62"
	dns := backupMXDown(t, primary, self)
	fallback := harness.NewFakeSMTP(t, harness.Script{})
	fbHop := fmt.Sprintf("[%s]:%s", hostOf(fallback.Addr()), portOf(fallback.Addr()))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\nsmtp_fallback_relay = [%q]\n", dns.Addr(), fbHop))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--domain", "mx2.backup.example",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	forwardPort25(t, self, r.addr())

	mustSend(t, r.addr(), "alice@example.org", []string{"user@backup.example"}, message("primary down"))
	e := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@backup.example>" })
	if res := e.Get("result"); res != "deferred" {
		t.Errorf("delivery line %v; want deferred while the primary MX is down", e.Fields)
	}
	if txs := fallback.Transactions(); len(txs) != 0 {
		t.Errorf("the fallback relay got %d transaction(s); want none: it would send the mail back to its backup MX, the relay", len(txs))
	}
}
