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

// TestFilterActionPerMessage: a header_checks FILTER action sends only the
// matching message through the content filter (Postfix's
// "FILTER transport:destination"); the other goes straight on.
func TestFilterActionPerMessage(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	checks := filepath.Join(t.TempDir(), "header_checks")
	os.WriteFile(checks, []byte(fmt.Sprintf("/^Subject: scan me/ FILTER smtp:[127.0.0.1]:%s\n", portOf(filter.Addr()))), 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[policy]\nheader_checks = \"regexp:%s\"\n", checks))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject),
		"--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("scan me"))
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("leave me"))
	txs := sink.WaitTransactions(t, 2, 20*time.Second)
	for _, tx := range txs {
		data := string(tx.Data)
		viaFilter := strings.Contains(data, "(Postfix)")
		scanned := strings.Contains(data, "Subject: scan me")
		if viaFilter != scanned {
			t.Errorf("message %q went through the filter: %v; want %v", head(data), viaFilter, scanned)
		}
	}
}
