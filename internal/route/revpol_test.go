package route

import (
	"context"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPolMailDomainIDN: reject_unknown_sender_domain for an SMTPUTF8
// sender at an internationalized domain asks DNS for its A-label, as
// Postfix's dns_lookup does (midna_domain_to_ascii); the UTF-8 bytes as a
// query name find nothing and the sender was refused "Domain not found".
func TestRevPolMailDomainIDN(t *testing.T) {
	s := harness.StartDNS(t, `
xn--bcher-kva.example.  MX  10 mail.example.
xn--caf-dma.example.    A   192.0.2.1
`)
	r := &Resolver{Server: s.Addr(), Timeout: time.Second}
	for _, d := range []string{"bücher.example", "BÜCHER.example", "café.example", "xn--bcher-kva.example"} {
		if err := r.MailDomain(context.Background(), d); err != nil {
			t.Errorf("MailDomain(%q) = %v; want nil (its A-label has records)", d, err)
		}
	}
	for _, d := range []string{"nosuch-ü.example", "a..example"} {
		if err := r.MailDomain(context.Background(), d); err == nil {
			t.Errorf("MailDomain(%q) = nil; want an error", d)
		}
	}
}
