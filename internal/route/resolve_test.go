package route

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

const testZone = `
example.com.            MX    20 mx2.example.com.
example.com.            MX    10 mx1.example.com.
example.com.            MX    30 mx3.example.com.
mx1.example.com.        A     192.0.2.1
mx1.example.com.        AAAA  2001:db8::1
mx2.example.com.        A     192.0.2.2
mx2.example.com.        A     192.0.2.1
mx3.example.com.        CNAME alias.example.com.
alias.example.com.      A     192.0.2.3
equal.example.          MX    10 a.equal.example.
equal.example.          MX    10 b.equal.example.
equal.example.          MX    10 c.equal.example.
equal.example.          MX    5 first.equal.example.
first.equal.example.    A     192.0.2.9
a.equal.example.        A     192.0.2.10
b.equal.example.        A     192.0.2.11
c.equal.example.        A     192.0.2.12
nomx.example.           A     192.0.2.30
nomx.example.           AAAA  2001:db8::30
nullmx.example.         MX    0 .
nodata.example.         TXT   "no mail here"
partial.example.        MX    10 gone.partial.example.
partial.example.        MX    20 nodata.example.
partial.example.        MX    30 mx.partial.example.
mx.partial.example.     A     192.0.2.40
allgone.example.        MX    10 gone.allgone.example.
allgone.example.        MX    20 nodata.example.
servfail.example.       A     192.0.2.50
mxfail.example.         MX    10 broken.example.
mxfail.example.         MX    20 gone.mxfail.example.
broken.example.         A     192.0.2.51
slowmx.example.         MX    10 slow.example.
slowmx.example.         MX    20 mx.partial.example.
slow.example.           A     192.0.2.52
relay.example.          A     192.0.2.60
relay.example.          AAAA  2001:db8::60
drop.example.           MX    10 mx.partial.example.
`

// hosts calls Hosts for a route to nexthop.
func hosts(t *testing.T, r *Resolver, nexthop string) ([]string, error) {
	t.Helper()
	n, err := ParseNextHop(nexthop)
	if err != nil {
		t.Fatal(err)
	}
	port := n.Port
	if port == 0 {
		port = DefaultPort
	}
	return r.Hosts(context.Background(), Route{NextHop: n.String(), Host: n.Host, MX: n.MX, Port: port})
}

func TestResolverHosts(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	s.SetRcode("servfail.example", dns.RcodeServerFailure)
	s.SetRcode("broken.example", dns.RcodeServerFailure)
	r := &Resolver{Server: s.Addr(), Timeout: 2 * time.Second}
	tests := []struct {
		nexthop string
		want    []string
	}{
		// By preference; an address shared by two MX hosts comes once.
		{"example.com", []string{"192.0.2.1:25", "[2001:db8::1]:25", "192.0.2.2:25", "192.0.2.3:25"}},
		{"Example.COM:2525", []string{"192.0.2.1:2525", "[2001:db8::1]:2525", "192.0.2.2:2525", "192.0.2.3:2525"}},
		// RFC 5321 section 5.1: no MX, the domain's own addresses.
		{"nomx.example", []string{"192.0.2.30:25", "[2001:db8::30]:25"}},
		// MX hosts that do not exist or have no address are skipped.
		{"partial.example", []string{"192.0.2.40:25"}},
		// [host]: no MX lookup.
		{"[relay.example]:587", []string{"192.0.2.60:587", "[2001:db8::60]:587"}},
		{"[example.com]", nil},
		{"[192.0.2.99]", []string{"192.0.2.99:25"}},
		{"[IPv6:2001:db8::99]:26", []string{"[2001:db8::99]:26"}},
	}
	for _, tt := range tests {
		got, err := hosts(t, r, tt.nexthop)
		if tt.want == nil {
			if err == nil {
				t.Errorf("Hosts(%q) = %q; want an error", tt.nexthop, got)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("Hosts(%q) = %q, %v; want %q", tt.nexthop, got, err, tt.want)
		}
	}

	before := s.Queries()
	if _, err := hosts(t, r, "[192.0.2.99]"); err != nil || s.Queries() != before {
		t.Errorf("Hosts([192.0.2.99]): %v, %d queries; want none", err, s.Queries()-before)
	}
	before = len(s.Questions())
	hosts(t, r, "[relay.example]")
	if q := s.Questions()[before:]; !cmp.Equal(q, []string{"relay.example. A", "relay.example. AAAA"}) {
		t.Errorf("Hosts([relay.example]) asked %q; want A and AAAA only", q)
	}
}

func TestResolverErrors(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	s.SetRcode("servfail.example", dns.RcodeServerFailure)
	s.SetRcode("broken.example", dns.RcodeServerFailure)
	s.SetRcode("refused.example", dns.RcodeRefused)
	s.SetDrop("drop.example", "slow.example")
	r := &Resolver{Server: s.Addr(), Timeout: 300 * time.Millisecond}
	tests := []struct {
		nexthop string
		perm    bool
		code    string
		reason  string
	}{
		{"nosuch.example", true, "5.1.2", "domain does not exist"},
		{"[nosuch.example]", true, "5.1.2", "domain does not exist"},
		{"nullmx.example", true, "5.1.10", "null MX"},
		{"nodata.example", true, "5.4.4", "host has no address"},
		{"allgone.example", true, "5.4.4", "no address for any mail exchanger"},
		{"servfail.example", false, "4.4.3", "SERVFAIL"},
		{"[servfail.example]", false, "4.4.3", "SERVFAIL"},
		{"refused.example", false, "4.4.3", "REFUSED"},
		// One MX host fails temporarily, the other does not exist.
		{"mxfail.example", false, "4.4.3", "SERVFAIL"},
		{"drop.example", false, "4.4.3", "timed out"},
	}
	for _, tt := range tests {
		got, err := hosts(t, r, tt.nexthop)
		var de *DNSError
		if !errors.As(err, &de) {
			t.Errorf("Hosts(%q) = %q, %v; want a *DNSError", tt.nexthop, got, err)
			continue
		}
		var temp interface{ Temporary() bool } = de
		if temp.Temporary() == tt.perm || de.Code != tt.code || !strings.Contains(de.Error(), tt.reason) {
			t.Errorf("Hosts(%q) error %q (temporary %v, code %s); want temporary %v, code %s, %q",
				tt.nexthop, de, de.Temporary(), de.Code, !tt.perm, tt.code, tt.reason)
		}
	}

	// A dropped MX host is skipped when another answers.
	got, err := hosts(t, r, "slowmx.example")
	if err != nil || !cmp.Equal(got, []string{"192.0.2.40:25"}) {
		t.Errorf("Hosts(slowmx.example) = %q, %v; want the second MX", got, err)
	}

	// A route that failed already.
	_, err = r.Hosts(context.Background(), Route{Error: "4.3.5 mail transport unavailable"})
	var de *DNSError
	if !errors.As(err, &de) || !de.Temporary() || de.Code != "4.3.5" {
		t.Errorf("Hosts(failed route) = %v; want a temporary 4.3.5 error", err)
	}

	// The context bounds the whole lookup.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	slow := &Resolver{Server: s.Addr(), Timeout: 10 * time.Second}
	start := time.Now()
	_, err = slow.Hosts(ctx, Route{NextHop: "drop.example", Host: "drop.example", MX: true, Port: 25})
	if !errors.As(err, &de) || !de.Temporary() || time.Since(start) > 5*time.Second {
		t.Errorf("Hosts with a cancelled context = %v after %v; want a temporary error at once", err, time.Since(start))
	}
}

func TestResolverEqualPreference(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	reverse := func(n int, swap func(i, j int)) {
		for i := 0; i < n/2; i++ {
			swap(i, n-1-i)
		}
	}
	r := &Resolver{Server: s.Addr(), Timeout: 2 * time.Second, shuffle: reverse}
	got, err := hosts(t, r, "equal.example")
	want := []string{"192.0.2.9:25", "192.0.2.12:25", "192.0.2.11:25", "192.0.2.10:25"}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("Hosts(equal.example) with a reversing shuffle = %q, %v; want %q", got, err, want)
	}

	// The real shuffle: the lowest preference first, the rest in every
	// order eventually.
	r = &Resolver{Server: s.Addr(), Timeout: 2 * time.Second}
	seen := map[string]bool{}
	for range 60 {
		got, err := hosts(t, r, "equal.example")
		if err != nil || len(got) != 4 || got[0] != "192.0.2.9:25" {
			t.Fatalf("Hosts(equal.example) = %q, %v", got, err)
		}
		seen[got[1]] = true
	}
	if len(seen) != 3 {
		t.Errorf("Hosts(equal.example): second address was only %v in 60 tries; want all three", seen)
	}
}

// TestResolverTargetNames: each address carries the name it was found
// under, as the relay logs relay=NAME[IP] and the enforcer trusts an
// upstream by it: the MX host's for an MX route (so a Google Workspace
// domain's upstream is aspmx.l.google.com, not the domain), the domain's
// own without MX records, the host's for a [host] route.
func TestResolverTargetNames(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	r := &Resolver{Server: s.Addr(), Timeout: 2 * time.Second}
	for _, tt := range []struct {
		route Route
		want  []target
	}{
		{Route{Host: "partial.example", MX: true, Port: 25}, []target{{"mx.partial.example", "192.0.2.40:25", 30}}},
		{Route{Host: "nomx.example", MX: true, Port: 25}, []target{{"nomx.example", "192.0.2.30:25", 0}, {"nomx.example", "[2001:db8::30]:25", 0}}},
		{Route{Host: "relay.example", Port: 587}, []target{{"relay.example", "192.0.2.60:587", 0}, {"relay.example", "[2001:db8::60]:587", 0}}},
		{Route{Host: "192.0.2.99", Port: 25}, []target{{"192.0.2.99", "192.0.2.99:25", 0}}},
	} {
		got, err := r.targets(context.Background(), tt.route)
		if err != nil || !cmp.Equal(got, tt.want, cmp.AllowUnexported(target{})) {
			t.Errorf("targets(%+v) = %+v, %v; want %+v", tt.route, got, err, tt.want)
		}
	}
}
