package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPolPostmasterUnknownDomain: with reject_unknown_recipient_domain
// and a --domain that DNS does not know (an internal name), RCPT
// TO:<Postmaster> from anyone is still accepted (RFC 5321 4.5.1), as
// Postfix skips its own domains; another unknown domain is refused.
func TestRevPolPostmasterUnknownDomain(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
mx.example.          MX   10 mail.mx.example.
`)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["mx.example"]
sender_restrictions = ["reject_unknown_sender_domain"]
recipient_restrictions = ["reject_unknown_recipient_domain", "permit_mynetworks", "reject_unauth_destination"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--domain", "relay.lan",
		"--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ from, rcpt, want string }{
		{"", "Postmaster", "250 "},
		{"a@mx.example", "postmaster@relay.lan", "250 "},
		{"postmaster@relay.lan", "b@mx.example", "250 "},
		{"a@mx.example", "b@nosuch.example", "450 4.1.2 <b@nosuch.example>: Recipient address rejected: Domain not found"},
	} {
		if a := tryMessage(t, r.addr(), "127.0.0.2", tc.from, tc.rcpt); !strings.HasPrefix(a.rcpt.String(), tc.want) {
			t.Errorf("MAIL FROM:<%s> RCPT TO:<%s> = %q; want %q", tc.from, tc.rcpt, a.rcpt, tc.want)
		}
	}
}
