package remote_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud4NoStartTLSReason: a transport with tls = "encrypt" (no login)
// whose next hop offers no STARTTLS deferred its mail with "TLS is
// required (with --client-auth it is, unless --client-tls-verify
// <none>)": the administrator, who set no --client-auth, was sent after
// the wrong switch. The reason names what asks for TLS.
func TestAud4NoStartTLSReason(t *testing.T) {
	f := harness.NewFakeSMTP(t, harness.Script{})
	_, err := remote.Dial(context.Background(), f.Addr(), remote.Options{TLS: remote.TLSRequired, ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Dial without STARTTLS offered: no error")
	}
	if msg := err.Error(); strings.Contains(msg, "--client-auth") || !strings.Contains(msg, "tls = encrypt") {
		t.Errorf("reason without a login = %q; want the TLS settings named, not --client-auth", msg)
	}
}
