package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// mxFirst is the loopback alias the MX of TestFirstCommandDeliversByMX
// resolves to; its port 25 is forwarded to a FakeSMTP.
const mxFirst = "127.0.71.31"

// TestFirstCommandDeliversByMX runs the README's first command, which names
// no smarthost: a message sent to it goes to the recipient domain's MX
// (through the harness's DNS server, the only setting the test adds), and
// the dashboard listens on loopback. The same command with --immediate,
// which needs a smarthost, is refused with the switch named.
func TestFirstCommandDeliversByMX(t *testing.T) {
	t.Parallel()
	mx := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.first.example"})
	forwardPort25(t, mxFirst, mx.Addr())
	dns := harness.StartDNS(t, fmt.Sprintf(`
first.example.     MX 10 mx.first.example.
mx.first.example.  A  %s
`, mxFirst))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\n", dns.Addr()))
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-on-disconnect", "--admin-http", admin, "--log", "--config", cfg)

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@first.example"}, message("first command"))
	txs := mx.WaitTransactions(t, 1, 15*time.Second)
	if got := txs[0].To(); !slices.Equal(got, []string{"bob@first.example"}) || !txs[0].Accepted() {
		t.Errorf("the MX got recipients %v (accepted %v); want bob@first.example, accepted", got, txs[0].Accepted())
	}
	e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<bob@first.example>" })
	if e.Get("result") != "sent" || !strings.Contains(e.Get("relay"), mxFirst) {
		t.Errorf("delivery line = %v; want result=sent through %s", e.Fields, mxFirst)
	}
	if !strings.Contains(r.stderr(), "by MX") {
		t.Errorf("the start-up line does not say the relay delivers by MX:\n%s", r.stderr())
	}
	c, err := net.DialTimeout("tcp", admin, 5*time.Second)
	if err != nil {
		t.Errorf("the dashboard does not listen on %s: %v", admin, err)
	} else {
		c.Close()
	}

	out, errOut, code := opsCmd(t, "", "--as-server", "--spool-dir", t.TempDir(), "--immediate")
	if code != 2 || !strings.Contains(errOut, "--immediate: forwarding while receiving needs a smarthost") {
		t.Errorf("--immediate without a smarthost = exit %d, %q %q; want 2 naming the switch", code, out, errOut)
	}
}
