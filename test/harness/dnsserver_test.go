package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func query(t *testing.T, addr, network, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answers returns the rcode and the answer records' data.
func answers(r *dns.Msg) (string, []string) {
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return dns.RcodeToString[r.Rcode], out
}

func TestDNSServer(t *testing.T) {
	s := StartDNS(t, `
2.0.0.127.zen.example.   A     127.0.0.2
2.0.0.127.zen.example.   A     127.0.0.4
2.0.0.127.zen.example.   TXT   "listed by zen"
example.com.             MX    10 mx.example.com.
mx.example.com           A     192.0.2.25
mx.example.com           AAAA  2001:db8::25
25.2.0.192.in-addr.arpa. PTR   mx.example.com.
www.example.com.         CNAME alias.example.com.
alias.example.com.       CNAME mx.example.com.
`)
	tests := []struct {
		name      string
		qtype     uint16
		wantRcode string
		want      []string
	}{
		{"2.0.0.127.zen.example", dns.TypeA, "NOERROR", []string{"127.0.0.2", "127.0.0.4"}},
		{"2.0.0.127.ZEN.example", dns.TypeTXT, "NOERROR", []string{`"listed by zen"`}},
		{"example.com", dns.TypeMX, "NOERROR", []string{"10 mx.example.com."}},
		{"mx.example.com", dns.TypeAAAA, "NOERROR", []string{"2001:db8::25"}},
		{"25.2.0.192.in-addr.arpa", dns.TypePTR, "NOERROR", []string{"mx.example.com."}},
		{"www.example.com", dns.TypeA, "NOERROR", []string{"alias.example.com.", "mx.example.com.", "192.0.2.25"}},
		{"example.com", dns.TypeA, "NOERROR", nil},
		{"3.0.0.127.zen.example", dns.TypeA, "NXDOMAIN", nil},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			r, err := query(t, s.Addr(), network, tt.name, tt.qtype)
			if err != nil {
				t.Errorf("%s %s %s: %v", network, tt.name, dns.TypeToString[tt.qtype], err)
				continue
			}
			rcode, got := answers(r)
			if rcode != tt.wantRcode || !cmp.Equal(got, tt.want) {
				t.Errorf("%s %s %s = %s %q; want %s %q", network, tt.name, dns.TypeToString[tt.qtype], rcode, got, tt.wantRcode, tt.want)
			}
		}
	}
	if got, want := s.Queries(), 2*len(tests); got != want {
		t.Errorf("Queries() = %d; want %d", got, want)
	}
	if q := s.Questions(); q[0] != "2.0.0.127.zen.example. A" {
		t.Errorf("Questions()[0] = %q", q[0])
	}
}

func TestDNSServerChanges(t *testing.T) {
	s := StartDNS(t, "")
	name := "3.0.0.127.zen.example"
	s.Set(name, "A", "127.0.0.3")
	s.Set(name, "TXT", "a text with spaces and \"quotes\"")
	r, err := query(t, s.Addr(), "udp", name, dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if rcode, got := answers(r); rcode != "NOERROR" || !cmp.Equal(got, []string{"127.0.0.3"}) {
		t.Errorf("after Set: A = %s %q", rcode, got)
	}
	r, err = query(t, s.Addr(), "udp", name, dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	if txt := r.Answer[0].(*dns.TXT).Txt; !cmp.Equal(txt, []string{`a text with spaces and \"quotes\"`}) {
		t.Errorf("after Set: TXT = %q", txt)
	}

	s.Set(name, "A")
	s.Set(name, "TXT")
	r, err = query(t, s.Addr(), "udp", name, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("after removing: %v, %v; want NXDOMAIN", r, err)
	}

	s.Set(name, "A", "127.0.0.3")
	s.SetRcode(name, dns.RcodeServerFailure)
	r, err = query(t, s.Addr(), "udp", name, dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("SetRcode(SERVFAIL): %v, %v", r, err)
	}
	s.SetRcode(name, dns.RcodeSuccess)

	// A TXT record too long for a 512-byte UDP answer is truncated over
	// UDP and whole over TCP.
	long := strings.Repeat("x", 1000)
	s.Set("long.example", "TXT", long)
	r, err = query(t, s.Addr(), "udp", "long.example", dns.TypeTXT)
	if err != nil || !r.Truncated {
		t.Errorf("long TXT over UDP: truncated = %v, %v; want true", r != nil && r.Truncated, err)
	}
	r, err = query(t, s.Addr(), "tcp", "long.example", dns.TypeTXT)
	if err != nil || r.Truncated || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != long {
		t.Errorf("long TXT over TCP: %v", err)
	}
}

func TestDNSServerDrop(t *testing.T) {
	s := StartDNS(t, "a.example. A 192.0.2.1\nb.zone.example. A 192.0.2.2")
	s.SetDrop("zone.example")
	if _, err := query(t, s.Addr(), "udp", "b.zone.example", dns.TypeA); err == nil {
		t.Error("query under a dropped zone answered; want a timeout")
	}
	if _, err := query(t, s.Addr(), "udp", "a.example", dns.TypeA); err != nil {
		t.Errorf("query outside the dropped zone: %v", err)
	}
	s.SetDrop(".")
	if _, err := query(t, s.Addr(), "tcp", "a.example", dns.TypeA); err == nil {
		t.Error("query with everything dropped answered; want a timeout")
	}
	s.SetDrop()
	if _, err := query(t, s.Addr(), "udp", "b.zone.example", dns.TypeA); err != nil {
		t.Errorf("query after SetDrop(): %v", err)
	}
	if got := s.Queries(); got != 4 {
		t.Errorf("Queries() = %d; want 4 (dropped ones count)", got)
	}

	s.SetDropFunc(func(name, qtype string) bool { return qtype == "AAAA" })
	if _, err := query(t, s.Addr(), "udp", "a.example", dns.TypeAAAA); err == nil {
		t.Error("AAAA query answered with AAAA dropped; want a timeout")
	}
	if _, err := query(t, s.Addr(), "udp", "a.example", dns.TypeA); err != nil {
		t.Errorf("A query with AAAA dropped: %v", err)
	}
	s.SetDropFunc(nil)

	s.SetDelay(200 * time.Millisecond)
	start := time.Now()
	if _, err := query(t, s.Addr(), "udp", "a.example", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answer with SetDelay(200ms) took %v", d)
	}
}
