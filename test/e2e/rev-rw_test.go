package e2e

import (
	"fmt"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevRWReinjectNotRateLimited: the content filter's reinjection
// listener hands back every message the relay sent it; it is not a client
// to be rate limited. With mynetworks not covering the filter's address
// (here 127.0.0.9/32 only), the client rate limits counted the filter's
// messages and recipients, and refused them with 450 past the limit, so
// every filtered message stalled.
func TestRevRWReinjectNotRateLimited(t *testing.T) {
	t.Parallel()
	reinject := harness.FreePort(t)
	cfg := writeConfig(t, `[policy]
mynetworks = ["127.0.0.9/32"]
client_message_rate_limit = 1
client_recipient_rate_limit = 1
`)
	startRelay(t, "127.0.0.1", "--as-server", "--spool-dir", t.TempDir(), "--config", cfg,
		"--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject))
	c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", reinject), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO filter.test")
	for i := range 3 {
		mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
		mustCmd(t, c, "250", "RCPT TO:<u%d@y.example>", i)
		mustCmd(t, c, "250", "RCPT TO:<v%d@y.example>", i)
		mustCmd(t, c, "250", "RSET")
	}
}
