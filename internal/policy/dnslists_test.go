package policy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// fakeLists lists the domains and addresses in listed; fail makes every
// lookup fail.
type fakeLists struct {
	listed map[string]bool
	fail   bool
	asked  *[]string
}

func (f fakeLists) ListedDomain(_ context.Context, domain, class, what string) (bool, string, error) {
	*f.asked = append(*f.asked, domain)
	if f.fail {
		return false, "", errors.New("SERVFAIL")
	}
	return f.listed[domain], "Service unavailable; " + class + " [" + what + "] blocked using z.test", nil
}

func (f fakeLists) Listed(_ context.Context, ip netip.Addr) (bool, string, error) {
	*f.asked = append(*f.asked, ip.String())
	if f.fail {
		return false, "", errors.New("SERVFAIL")
	}
	return f.listed[ip.String()], "", nil
}

func (f fakeLists) OpenDomain(string, bool) (DomainList, error) { return f, nil }
func (f fakeLists) OpenAllow(string) (Blocklist, error)         { return f, nil }

func TestDNSListsUnit(t *testing.T) {
	var asked []string
	lists := fakeLists{listed: map[string]bool{"bad.example": true, "203.0.113.9": true, "good.host.example": true}, asked: &asked}
	e := engine(t, Options{
		MyNetworks:   []netip.Prefix{},
		RelayDomains: []string{"relay.example"},
		DNSLists:     lists,
		// Postfix: a permit ends its own list only, so the allowlists
		// stand in front of the blocklist in the same list.
		Sender: []string{"permit_dnswl_client wl.test", "permit_rhswl_client rhswl.test", "reject_rhsbl_sender dbl.test"},
		Relay:  []string{"reject_unauth_destination"},
	})
	for _, tc := range []struct {
		ip, name, sender, rcpt, want string
	}{
		{"192.0.2.1", "", "a@bad.example", "b@relay.example", "554 5.7.1 Service unavailable; Sender address [a@bad.example] blocked using z.test"},
		// An allowlisted client (by address or by name) skips the
		// sender list, and still cannot relay.
		{"203.0.113.9", "", "a@bad.example", "b@relay.example", ""},
		{"192.0.2.1", "good.host.example", "a@bad.example", "b@relay.example", ""},
		{"203.0.113.9", "", "a@good.example", "b@elsewhere.example", "554 5.7.1 <b@elsewhere.example>: Relay access denied"},
		{"192.0.2.1", "", "", "b@relay.example", ""},
		{"192.0.2.1", "", "a@[192.0.2.7]", "b@relay.example", ""},
		{"192.0.2.1", "", "bare", "b@relay.example", ""},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), ClientName: tc.name, Sender: tc.sender, Recipient: tc.rcpt})
		got := ""
		if d.Refuses() {
			got = d.Reply()
		}
		if got != tc.want {
			t.Errorf("%s %q %q -> %q: %q; want %q", tc.ip, tc.name, tc.sender, tc.rcpt, got, tc.want)
		}
	}
	for _, a := range asked {
		if strings.Contains(a, "[") || a == "" || a == "bare" {
			t.Errorf("looked up %q", a)
		}
	}
	if !e.NeedsClientNames() {
		t.Error("permit_rhswl_client does not turn client name lookups on")
	}
	// A failing allowlist: a later refusal becomes DEFER_IF_REJECT's 450.
	lists.fail = true
	e = engine(t, Options{MyNetworks: []netip.Prefix{}, RelayDomains: []string{"relay.example"}, DNSLists: lists,
		Client: []string{"permit_dnswl_client wl.test", "reject"}})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@x.example", Recipient: "b@relay.example"})
	if d.Reply() != "450 4.7.1 <192.0.2.1>: Client host rejected: Service unavailable" {
		t.Errorf("failed allowlist then reject: %q", d.Reply())
	}
	// A failing blocklist lets the client through.
	e = engine(t, Options{MyNetworks: []netip.Prefix{}, RelayDomains: []string{"relay.example"}, DNSLists: lists,
		Sender: []string{"reject_rhsbl_sender dbl.test"}})
	if d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@bad.example", Recipient: "b@relay.example"}); d.Refuses() {
		t.Errorf("failed blocklist: %q", d.Reply())
	}
	for _, bad := range [][]string{{"reject_rhsbl_sender"}, {"permit_dnswl_client"}} {
		if _, err := New(Options{DNSLists: lists, Sender: bad, Relay: []string{"reject_unauth_destination"}}); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
	if _, err := New(Options{Sender: []string{"reject_rhsbl_sender dbl.test"}, Relay: []string{"reject_unauth_destination"}}); err == nil {
		t.Error("compiled without DNS lists")
	}
}
