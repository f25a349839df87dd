package route

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestQ20IDNRecipientDomain: an SMTPUTF8 recipient's domain is looked up
// by its A-label, as Postfix's dns_lookup does (midna_domain_to_ascii), for
// MX routes and [host] routes alike. Asking for the UTF-8 bytes got
// NXDOMAIN, and the mail bounced "domain does not exist".
func TestQ20IDNRecipientDomain(t *testing.T) {
	s := harness.StartDNS(t, `
xn--bcher-kva.example.     MX 10 mx.xn--bcher-kva.example.
mx.xn--bcher-kva.example.  A  192.0.2.77
smtp.xn--mller-kva.example. A 192.0.2.78
`)
	r := &Resolver{Server: s.Addr(), Timeout: 2 * time.Second}
	router, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"u@bücher.example", "u@BÜCHER.example."} {
		rt := router.Route("", rcpt)
		got, err := r.Hosts(context.Background(), rt)
		if err != nil {
			t.Fatalf("%s: %v", rcpt, err)
		}
		if diff := cmp.Diff([]string{"192.0.2.77:25"}, got); diff != "" {
			t.Errorf("%s: hosts (-want +got):\n%s", rcpt, diff)
		}
	}
	got, err := hosts(t, r, "[smtp.müller.example]:587")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"192.0.2.78:587"}, got); diff != "" {
		t.Errorf("[smtp.müller.example]: hosts (-want +got):\n%s", diff)
	}
	// A name that has no A-label is refused for good, not sent to DNS.
	if _, err := hosts(t, r, "bad\u200d\u0301.example"); err == nil || !err.(*DNSError).Perm {
		t.Errorf("invalid IDN: err = %v, want a permanent error", err)
	}
}
