package rdns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

func TestClientName(t *testing.T) {
	srv := harness.StartDNS(t, `
7.113.0.203.in-addr.arpa.   PTR  MX.Good.test.
mx.good.test.               A    203.0.113.7
8.113.0.203.in-addr.arpa.   PTR  mx.liar.test.
mx.liar.test.               A    198.51.100.1
9.113.0.203.in-addr.arpa.   PTR  other.test.
9.113.0.203.in-addr.arpa.   PTR  mx.second.test.
mx.second.test.             A    203.0.113.9
10.113.0.203.in-addr.arpa.  PTR  4.3.2.1.
4.3.2.1.                    A    203.0.113.10
11.113.0.203.in-addr.arpa.  PTR  mx.nameonly.test.
mx6.good.test.              AAAA 2001:db8::5
mx6.good.test.              A    203.0.113.5
`)
	ptr6, _ := dns.ReverseAddr("2001:db8::5")
	srv.Add(ptr6 + " PTR mx6.good.test.")
	r := &Resolver{Server: srv.Addr(), Timeout: 2 * time.Second}
	for _, tt := range []struct{ ip, want string }{
		{"203.0.113.7", "mx.good.test"},        // confirmed, lower-cased
		{"203.0.113.8", ""},                    // the name points elsewhere
		{"203.0.113.9", "mx.second.test"},      // the second PTR confirms
		{"203.0.113.10", ""},                   // a name that looks like an address
		{"203.0.113.11", ""},                   // the name has no address
		{"203.0.113.12", ""},                   // no PTR at all
		{"2001:db8::5", "mx6.good.test"},       // IPv6, by AAAA
		{"::ffff:203.0.113.7", "mx.good.test"}, // a mapped address is the IPv4 one
	} {
		if got := r.ClientName(context.Background(), netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("ClientName(%s) = %q; want %q", tt.ip, got, tt.want)
		}
	}

	// A server that does not answer: unknown, within the timeout.
	srv.SetDrop("in-addr.arpa.")
	r.Timeout = 300 * time.Millisecond
	start := time.Now()
	if got := r.ClientName(context.Background(), netip.MustParseAddr("203.0.113.7")); got != "" {
		t.Errorf("ClientName with no answer = %q; want \"\"", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ClientName with no answer took %v; want about the 300ms timeout", d)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"mx.example.com": true, "a-b.example": true, "x_y.example": true, "localhost": true,
		"": false, "1.2.3.4": false, "123": false, "2001:db8::1": false, "-a.example": false,
		"a..example": false, "a b.example": false, "a\x00.example": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v; want %v", name, got, want)
		}
	}
}

// TestLookupReverseAndTempFail: Lookup also gives the first valid PTR name
// whether it is confirmed or not, and says when DNS failed rather than
// answered (SERVFAIL), not when the name does not exist.
func TestLookupReverseAndTempFail(t *testing.T) {
	srv := harness.StartDNS(t, `
8.113.0.203.in-addr.arpa.   PTR  mx.liar.test.
mx.liar.test.               A    198.51.100.1
7.113.0.203.in-addr.arpa.   PTR  mx.good.test.
mx.good.test.               A    203.0.113.7
`)
	srv.SetRcode("13.113.0.203.in-addr.arpa.", dns.RcodeServerFailure)
	r := &Resolver{Server: srv.Addr(), Timeout: 2 * time.Second}
	for _, tt := range []struct {
		ip   string
		want Names
	}{
		{"203.0.113.7", Names{Name: "mx.good.test", Reverse: "mx.good.test"}},
		{"203.0.113.8", Names{Reverse: "mx.liar.test"}},
		{"203.0.113.12", Names{}},
		{"203.0.113.13", Names{TempFail: true}},
	} {
		if got := r.Lookup(context.Background(), netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Lookup(%s) = %+v; want %+v", tt.ip, got, tt.want)
		}
	}
}
