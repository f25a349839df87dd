package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestContentFilterLoop is Postfix's "advanced" after-queue content filter
// with relaykeeper as the MTA: every message goes to a filter listening on
// SMTP (a real Postfix instance here, relaying back), comes back on the
// reinject listener, and goes on to the smarthost, once, with its original
// client still known.
func TestContentFilterLoop(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ncontent_filter = %q\n", filter.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject),
		"--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("filtered"))

	txs := sink.WaitTransactions(t, 1, 20*time.Second)
	data := string(txs[0].Data)
	if !strings.Contains(data, "by postfix.relaykeeper.test (Postfix)") {
		t.Errorf("the smarthost's copy did not pass through the filter:\n%s", head(data))
	}
	if strings.Contains(data, "X-Relaykeeper-Original-Client") {
		t.Errorf("the relay's hand-over header leaked to the smarthost:\n%s", head(data))
	}
	time.Sleep(2 * time.Second)
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("the smarthost got %d copies; want 1 (no loop)", n)
	}
	// Two accepts: from the client, then back from the filter, which
	// names the original client, not the filter.
	accepts := r.events("accept")
	if len(accepts) != 2 {
		t.Fatalf("accept lines = %d; want 2", len(accepts))
	}
	first, second := accepts[0].Get("client"), accepts[1].Get("client")
	if first != second {
		t.Errorf("the reinjected message's client = %s; want the original client %s", second, first)
	}
	var toFilter, toSink int
	for _, e := range r.events("delivery") {
		switch e.Get("relay") {
		case filter.Addr():
			toFilter++
		case sink.Addr():
			toSink++
		}
	}
	if toFilter != 1 || toSink != 1 {
		t.Errorf("deliveries to the filter %d, to the smarthost %d; want 1 and 1", toFilter, toSink)
	}
	_ = maillog.Addr
}
