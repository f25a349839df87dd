package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAccessPrepend: an access table's PREPEND result adds its header
// field before the relay's Received header, as Postfix's smtpd does, once
// however many recipients' checks asked for it, and the checks go on
// (a later REJECT still refuses). In store-and-forward and proxy mode.
func TestAccessPrepend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcpt := writeFile(t, dir, "recipient_access", "tagged@example.net  PREPEND X-Tagged: yes\nrefused@example.net  REJECT\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
client_restrictions = ["check_client_access cidr:%s"]
recipient_restrictions = ["check_recipient_access hash:%s", "permit_mynetworks", "reject"]
`, writeFile(t, dir, "client_cidr", "127.0.0.0/8  PREPEND X-Relay-Client: local\n", 0o644), rcpt))
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		sink := harness.StartSink(t, harness.SinkOptions{})
		args := []string{"--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg, "--no-bounces"}
		if mode == "--as-server" {
			args = append(args, "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect")
		} else {
			args = append(args, "--as-proxy", sink.Addr())
		}
		r := startRelay(t, "127.0.0.1", args...)
		if got, _ := probeRcpt(t, r.addr(), "refused@example.net"); got.code() != 554 {
			t.Errorf("%s: RCPT TO:<refused@example.net> = %q; want 554 (the checks go on after PREPEND)", mode, got)
		}
		mustSend(t, r.addr(), "alice@example.org", []string{"tagged@example.net", "bob@example.net", "carol@example.net"}, message("prepend"))
		sink.WaitCount(t, 1, 10*time.Second)
		data := sink.Messages()[0].Data
		want := "X-Relay-Client: local\nX-Tagged: yes\nReceived: from " // the sink keeps LF
		if !strings.HasPrefix(data, want) || strings.Count(data, "X-Relay-Client:") != 1 {
			t.Errorf("%s: the message upstream begins %q; want %q, each field once", mode, head(data), want)
		}
	}
}
