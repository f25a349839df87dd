package companion

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestPfe19SyslogCutDeliveryReported: a syslog daemon that takes
// messages of 1024 bytes (RFC 3164's size, a small maxMessageSize) cuts
// Postfix's lines shorter than Postfix's own 2000 bytes. A spammer's
// 900-byte orig_to pushed the status and Gmail's refusal out of the line,
// which was skipped without a word, being under 2000 bytes: the spammer
// was never banned and nobody was told. A delivery line that ends before
// its status, at any length, is reported with its client.
func TestPfe19SyslogCutDeliveryReported(t *testing.T) {
	for _, limit := range []int{1024, 2048} {
		var out strings.Builder
		c := New(Options{Test: true, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
			enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
		full := message("4A0001ABC1", "203.0.113.66", "a@spam.example", "owner@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))
		full = strings.Replace(full, "to=<owner@gmail.test>,", "to=<owner@gmail.test>, orig_to=<"+strings.Repeat("x", limit-124)+"@relay.example>,", 1)
		lines := strings.Split(strings.TrimSuffix(full, "\n"), "\n")
		last := lines[len(lines)-1]
		if len(last) <= limit {
			t.Fatalf("the delivery line has %d bytes, not more than %d", len(last), limit)
		}
		lines[len(lines)-1] = last[:limit]
		got := runLog(t, c, &out, strings.Join(lines, "\n")+"\n")
		if len(got) != 1 || !strings.HasPrefix(got[0], "would-report 4A0001ABC1 203.0.113.66 ") || !strings.Contains(got[0], "status and reply are lost") {
			t.Errorf("cut at %d: actions %q; want the cut line reported with its client", limit, got)
		}
	}
}
