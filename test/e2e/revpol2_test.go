package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPol2RHSBLUTF8Sender: under SMTPUTF8 a sender's domain may be
// given in UTF-8 (U-labels); Postfix's reject_rhsbl_sender looks up its
// A-label form (midna_domain_to_ascii), which is what a domain list
// lists. The UTF-8 spelling must not slip a listed domain past the list.
func TestRevPol2RHSBLUTF8Sender(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
xn--bcher-kva.example.dbl.test.  A  127.0.1.2
`)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["relay.example"]
recipient_restrictions = ["reject_rhsbl_sender dbl.test", "reject_unauth_destination"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, from := range []string{"a@xn--bcher-kva.example", "a@bücher.example", "a@BÜCHER.example"} {
		c := mustDial(t, r.addr(), "127.0.0.2")
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<%s> SMTPUTF8", from)
		got, _ := c.cmd("RCPT TO:<b@relay.example>")
		if !strings.HasPrefix(got.String(), "554 5.7.1 Service unavailable; Sender address") {
			t.Errorf("MAIL FROM:<%s>: RCPT = %q; want the list's 554", from, got)
		}
		c.Close()
	}
}

// TestRevPol2RelayRecipientForms: relay_recipient_maps looks a recipient
// up as Postfix does once trivial-rewrite resolved it: a quoted local
// part that needs no quoting, and a trailing dot after the domain, are
// the listed address; a routed address in a relay domain is not listed.
func TestRevPol2RelayRecipientForms(t *testing.T) {
	t.Parallel()
	r := startRelayRecipients(t, t.TempDir(), "alice@relay.example  OK\n", `"relay.example"`)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "client.test", "a@x.example", `"alice"@relay.example`, "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "alice@relay.example.", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "@a.example:alice@relay.example", "250 "},
		// From mynetworks (127.0.0.1), relaying is allowed anywhere, but
		// a routed address in a relay domain is still not a listed one.
		{"127.0.0.1", "client.test", "a@x.example", "carol%elsewhere.example@relay.example", "550 5.1.1 "},
		{"127.0.0.1", "client.test", "a@x.example", "carol@relay.example", "550 5.1.1 "},
	})
}
