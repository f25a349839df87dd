package config

import (
	"slices"
	"testing"
)

// TestRev17TLSConfigMaximum: in E-MailRelay's --tls-config, "-tlsv1.3"
// sets the highest version to TLS 1.3 (m_max in its OpenSSL back-end),
// which is relaykeeper's own highest: "tlsv1.2,-tlsv1.3", the explicit
// form of what relaykeeper always negotiates, was refused as "a narrower
// range", and an E-MailRelay command line with it did not start.
func TestRev17TLSConfigMaximum(t *testing.T) {
	for _, v := range []string{"-tlsv1.3", "tlsv1.2,-tlsv1.3", "openssl, TLSv1.2, -TLSv1.3"} {
		if _, err := ParseSwitches([]string{"--as-server", "--tls-config=" + v}); err != nil {
			t.Errorf("--tls-config=%s: %v; want it taken", v, err)
		}
	}
}

// TestRev17NeverBlockRelayDomainNames: the relay's relay domains are never
// blocked (NeverBlock), but since relay_domains items may hold several
// names (a9311e8), an item "a.example, b.example" joined never_block as
// that one string, which no domain is: the enforcer could block the
// relay's own relay domains. A negated name is no relay domain, and
// ".example" is written for the subdomains.
func TestRev17NeverBlockRelayDomainNames(t *testing.T) {
	c := Default()
	c.Domain, c.Enforce.NeverBlock = "relay.example", nil
	c.Policy.RelayDomains = []string{"a.example, b.example c.example", "!sub.d.example", "!!d.example", ".e.example", "hash:/etc/postfix/relay", "/etc/postfix/relay_domains"}
	got := c.NeverBlock()
	want := []string{"relay.example", "a.example", "b.example", "c.example", "d.example", "e.example"}
	if !slices.Equal(got, want) {
		t.Errorf("NeverBlock() = %q; want %q", got, want)
	}
}
