package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud24RoutedDebugPeer: debug_peer_list traces the whole
// conversation with a listed upstream also when routing (transport_maps,
// MX) chose it, not only with forward.to; an unlisted upstream is not
// traced.
func TestAud24RoutedDebugPeer(t *testing.T) {
	t.Parallel()
	hopA := harness.NewFakeSMTP(t, harness.Script{})
	hopB := harness.NewFakeSMTP(t, harness.Script{})
	dns := harness.StartDNS(t, "hop-a.test. A 127.0.0.1\nhop-b.test. A 127.0.0.1\n")
	cfg := writeConfig(t, fmt.Sprintf(`
[log]
debug_peers = ["hop-a.test"]

[routing]
dns_server = "%s"
transport_maps = ["inline:{ a.example=zombig_name, b.example=relay:[hop-b.test]:%s }"]

[transports.zombig_name]
nexthop = "[hop-a.test]:%s"
log_name = "relay-zombig-name"
`, dns.Addr(), portOf(hopB.Addr()), portOf(hopA.Addr())))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@a.example"}, message("to a"))
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@b.example"}, message("to b"))
	hopA.WaitTransactions(t, 1, 10*time.Second)
	hopB.WaitTransactions(t, 1, 10*time.Second)

	for _, to := range []string{"<bob@a.example>", "<carol@b.example>"} {
		r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == to })
	}
	log := r.stderr()
	if !strings.Contains(log, `debug_peer=hop-a.test[127.0.0.1:`+portOf(hopA.Addr())+`] dir=> line="RCPT TO:<bob@a.example>"`) {
		t.Errorf("no trace of the session with hop-a.test, a debug peer reached by transport_maps:\n%s", log)
	}
	if strings.Contains(log, "debug_peer=hop-b.test") {
		t.Errorf("the session with hop-b.test, not a debug peer, was traced:\n%s", log)
	}
}
