package route

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
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

// TestQ20MXAddressLimitFirstDial: a domain with eight MX hosts, none of
// which answers. Postfix's smtp_mx_address_limit (5, which routing.md
// says holds) bounds the addresses one delivery tries; the first dial
// tried every address, so a destination whose hosts time out held a
// delivery for eight connect timeouts instead of five.
func TestQ20MXAddressLimitFirstDial(t *testing.T) {
	_, port, _ := strings.Cut(strings.Trim(closedHop(t), "["), "]:")
	var zone strings.Builder
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&zone, "many.example. MX %d mx%d.many.example.\nmx%d.many.example. A 127.0.73.%d\n", i*10, i, i, i)
	}
	s := harness.StartDNS(t, zone.String())
	d, err := NewDialer(DialerOptions{Session: remote.Options{Helo: "relay.test"},
		Resolver: &Resolver{Server: s.Addr(), Timeout: 2 * time.Second},
		Routes:   Options{DefaultTransport: "smtp:many.example:" + port}})
	if err != nil {
		t.Fatal(err)
	}
	dst := d.Route("a@example.org", "u@x.example")
	_, _, passed, err := d.DialHosts(context.Background(), dst)
	if err == nil {
		t.Fatal("a host answered; want none")
	}
	if len(passed) != MXAddressLimit {
		var addrs []string
		for _, p := range passed {
			addrs = append(addrs, p.Addr)
		}
		t.Errorf("the first dial tried %d addresses %v; want %d (smtp_mx_address_limit)", len(passed), addrs, MXAddressLimit)
	}
	// DialNext has nothing left within the limit.
	var tried []string
	for _, p := range passed {
		tried = append(tried, p.Addr)
	}
	if _, _, more, err := d.DialNext(context.Background(), dst, tried); err == nil || len(more) != 0 {
		t.Errorf("DialNext after the limit: %d more hosts, %v; want none", len(more), err)
	}
}

// TestQ20NullMXAnyPreference: an MX record whose exchange is "." says the
// domain takes no mail, whatever its preference: Postfix's dns_lookup
// returns DNS_NULLMX for any such record ("does not accept mail
// (nullMX)"). With "MX 10 ." the relay found no MX host and fell back to
// the implicit MX, the domain's own address (its web server), which RFC
// 5321 allows only when there are no MX records at all; the policy check
// (MailDomain) took the domain as one that accepts mail.
func TestQ20NullMXAnyPreference(t *testing.T) {
	s := harness.StartDNS(t, `
nullten.example.   MX 10 .
nullten.example.   A  192.0.2.80
mixednull.example. MX 10 .
mixednull.example. MX 20 mx.mixednull.example.
mx.mixednull.example. A 192.0.2.81
`)
	r := &Resolver{Server: s.Addr(), Timeout: 2 * time.Second}
	for _, dom := range []string{"nullten.example", "mixednull.example"} {
		got, err := hosts(t, r, dom)
		var de *DNSError
		if !errors.As(err, &de) || !de.NullMX() || !de.Perm {
			t.Errorf("%s: hosts %v, %v; want the null MX error (5.1.10)", dom, got, err)
		}
		err = r.MailDomain(context.Background(), dom)
		if !errors.As(err, &de) || !de.NullMX() {
			t.Errorf("MailDomain(%s) = %v; want the null MX error", dom, err)
		}
	}
}
