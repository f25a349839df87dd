package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestCanonicalClassesEnvelopeOnly: canonical_classes = envelope_sender,
// envelope_recipient maps the envelope and leaves the header as the
// client wrote it, for a client whose header would otherwise be mapped
// (the relay's own host, local_header_rewrite_clients' default).
func TestCanonicalClassesEnvelopeOnly(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "ENHANCEDSTATUSCODES"}})
	cfg := writeConfig(t, fmt.Sprintf("[rewrite]\ncanonical_maps = [%q]\ncanonical_classes = [\"envelope_sender\", \"envelope_recipient\"]\n",
		"inline:{ root@host.local=alerts@example.com, ops@host.local=ops@example.com }"))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg,
		"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1")
	head := "From: Cron <root@host.local>\r\nTo: ops@host.local\r\nSubject: disk\r\n"
	mustSend(t, r.addr(), "root@host.local", []string{"ops@host.local"}, head+"\r\nhello\r\n")
	tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
	if tx.MailFrom != "alerts@example.com" || len(tx.Rcpts) != 1 || tx.Rcpts[0].Addr != "ops@example.com" {
		t.Errorf("envelope %q -> %v; want alerts@example.com -> ops@example.com", tx.MailFrom, tx.Rcpts)
	}
	if !strings.Contains(string(tx.Data), head) {
		t.Errorf("header mapped; want it as the client wrote it:\n%s", tx.Data)
	}
}
