package dnsbl

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseRBLSpec(t *testing.T) {
	tests := []struct {
		spec   string
		want   string
		listed []string // answers that list
		not    []string // answers that do not
	}{
		{"zen.spamhaus.org", "zen.spamhaus.org",
			[]string{"127.0.0.2", "127.0.0.11", "127.1.2.3"}, []string{"127.255.255.254", "127.255.255.252", "10.0.0.2"}},
		{"ZEN.Spamhaus.org.", "zen.spamhaus.org", []string{"127.0.0.2"}, nil},
		{"zen.spamhaus.org=127.0.0.2", "zen.spamhaus.org=127.0.0.2",
			[]string{"127.0.0.2"}, []string{"127.0.0.3", "127.0.0.10"}},
		{"zen.spamhaus.org=127.0.0.[2..11]", "zen.spamhaus.org=127.0.0.[2..11]",
			[]string{"127.0.0.2", "127.0.0.5", "127.0.0.11"}, []string{"127.0.0.1", "127.0.0.12", "127.0.1.2"}},
		{"bl.example.net=127.0.[0;1].[2;4..7]", "bl.example.net=127.0.[0;1].[2;4..7]",
			[]string{"127.0.0.2", "127.0.1.4", "127.0.1.7"}, []string{"127.0.0.3", "127.0.2.2", "127.0.0.8"}},
		{"bl.example.net=127.255.255.254", "bl.example.net=127.255.255.254",
			[]string{"127.255.255.254"}, nil},
	}
	for _, tt := range tests {
		z, err := ParseRBLSpec(tt.spec)
		if err != nil {
			t.Errorf("ParseRBLSpec(%q): %v", tt.spec, err)
			continue
		}
		if got := z.String(); got != tt.want {
			t.Errorf("ParseRBLSpec(%q) = %q; want %q", tt.spec, got, tt.want)
		}
		for _, a := range tt.listed {
			if !z.lists(netip.MustParseAddr(a)) {
				t.Errorf("%q does not list on %s; want listed", tt.spec, a)
			}
		}
		for _, a := range tt.not {
			if z.lists(netip.MustParseAddr(a)) {
				t.Errorf("%q lists on %s; want not listed", tt.spec, a)
			}
		}
	}
	for _, spec := range []string{"", "=127.0.0.2", "127.0.0.1", "zen.example=127.0.0", "zen.example=127.0.0.2.5",
		"zen.example=127.0.0.[2..", "zen.example=127.0.0.[5..2]", "zen.example=127.0.0.256", "zen.example=127.0.0.2*3",
		"zen.example=127.0.0.[]", "zen.example=127.0.0.x", "bad..name"} {
		if z, err := ParseRBLSpec(spec); err == nil {
			t.Errorf("ParseRBLSpec(%q) = %q; want an error", spec, z)
		}
	}
}

func zoneNames(zs []Zone) []string {
	var out []string
	for _, z := range zs {
		out = append(out, z.String())
	}
	return out
}

func TestParseEmailRelay(t *testing.T) {
	type cfg struct {
		Zones      []string
		Threshold  int
		Timeout    time.Duration
		FailClosed bool
		Server     string
	}
	tests := []struct {
		spec string
		want cfg
	}{
		{"zen.spamhaus.org", cfg{[]string{"zen.spamhaus.org"}, 1, 5 * time.Second, false, ""}},
		{"a.example,b.example,2", cfg{[]string{"a.example", "b.example"}, 2, 5 * time.Second, false, ""}},
		{"a.example,b.example,2,500", cfg{[]string{"a.example", "b.example"}, 2, 500 * time.Millisecond, false, ""}},
		{"a.example,1,-500,127.0.0.1:5353", cfg{[]string{"a.example"}, 1, 500 * time.Millisecond, true, "127.0.0.1:5353"}},
		{"a.example, 1, 3s, 1.1.1.1", cfg{[]string{"a.example"}, 1, 3 * time.Second, false, "1.1.1.1:53"}},
		{"a.example,0,-500", cfg{[]string{"a.example"}, 0, 500 * time.Millisecond, false, ""}},
		{"a.example,1,500,[2001:db8::53]:5353", cfg{[]string{"a.example"}, 1, 500 * time.Millisecond, false, "[2001:db8::53]:5353"}},
		{"a.example,1,500,::1", cfg{[]string{"a.example"}, 1, 500 * time.Millisecond, false, "[::1]:53"}},
		// A TLD of digits and letters is a domain, as in E-MailRelay.
		{"127.0.0.com", cfg{[]string{"127.0.0.com"}, 1, 5 * time.Second, false, ""}},
		{"zen.example=127.0.0.[2..11],bl.example", cfg{[]string{"zen.example=127.0.0.[2..11]", "bl.example"}, 1, 5 * time.Second, false, ""}},
		// The old, reversed order.
		{"1.1.1.1:53,500,1,zen.spamhaus.org,bl.example", cfg{[]string{"zen.spamhaus.org", "bl.example"}, 1, 500 * time.Millisecond, false, "1.1.1.1:53"}},
		{"127.0.0.1,-2000,2,a.example,b.example,c.example", cfg{[]string{"a.example", "b.example", "c.example"}, 2, 2 * time.Second, true, "127.0.0.1:53"}},
		{",500,1,a.example", cfg{[]string{"a.example"}, 1, 500 * time.Millisecond, false, ""}},
	}
	for _, tt := range tests {
		c, err := ParseEmailRelay(tt.spec)
		if err != nil {
			t.Errorf("ParseEmailRelay(%q): %v", tt.spec, err)
			continue
		}
		got := cfg{zoneNames(c.Zones), c.Threshold, c.Timeout, c.FailClosed, c.Server}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseEmailRelay(%q) mismatch (-want +got):\n%s", tt.spec, diff)
		}
	}
	for _, spec := range []string{"", "1.1.1.1", "1.1.1.1,500,1", "a.example,x", "a.example,-1", "a.example,1,fast",
		"a.example,1,500,dns.example", "a.example,1,500,1.1.1.1,extra", "1.1.1.1,500,1,127.0.0.2", "notanip,500,1,a.example",
		"a.example,1,500,1.1.1.1:99999"} {
		if c, err := ParseEmailRelay(spec); err == nil {
			t.Errorf("ParseEmailRelay(%q) = %+v; want an error", spec, c)
		}
	}
}

func TestQueryName(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.99", "99.2.0.192.zen.example."},
		{"::ffff:192.0.2.99", "99.2.0.192.zen.example."},
		{"2001:db8:1:2::ab", "b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.zen.example."},
	}
	for _, tt := range tests {
		if got := queryName(netip.MustParseAddr(tt.ip).Unmap(), "zen.example"); got != tt.want {
			t.Errorf("queryName(%s) = %q; want %q", tt.ip, got, tt.want)
		}
	}
}

func TestRejectText(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Listed: true, Hits: []Hit{{Zone: "zen.example", Text: "see https://example.com/q=192.0.2.1"}}},
			"Service unavailable; Client host [192.0.2.1] blocked using zen.example; see https://example.com/q=192.0.2.1"},
		{Result{Listed: true, Hits: []Hit{{Zone: "zen.example"}}},
			"Service unavailable; Client host [192.0.2.1] blocked using zen.example"},
		{Result{Listed: true, TimedOut: true, Failures: []Failure{{Zone: "a.example", NoAnswer: true}, {Zone: "b.example", NoAnswer: true}}},
			"Service unavailable; Client host [192.0.2.1] blocked: no answer from a.example, b.example"},
	}
	for _, tt := range tests {
		if got := tt.r.RejectText(ip); got != tt.want {
			t.Errorf("RejectText = %q; want %q", got, tt.want)
		}
	}
}

func TestUnescapeTXT(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `say \"hi\"`: `say "hi"`, `back\\slash`: `back\slash`, `tab\009x`: "tab\tx", `end\`: `end\`,
	} {
		if got := unescapeTXT(in); got != want {
			t.Errorf("unescapeTXT(%q) = %q; want %q", in, got, want)
		}
	}
	if got := printable("a\tb\x7f"); got != "a?b?" || strings.ContainsAny(got, "\t\x7f") {
		t.Errorf("printable = %q", got)
	}
}

// TestRevTabRejectTextBounded: however long a list's TXT text, the reply
// line ("554 5.7.1 " + RejectText + CRLF) stays within RFC 5321's 512
// octets, and the text is cut between characters, never inside one.
func TestRevTabRejectTextBounded(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::1")
	for _, text := range []string{strings.Repeat("x", 5000), strings.Repeat("é", 5000), strings.Repeat("ab€", 300)} {
		got := Result{Listed: true, Hits: []Hit{{Zone: "zen.example", Text: text}}}.RejectText(ip)
		if n := len("554 5.7.1 ") + len(got) + len("\r\n"); n > 512 {
			t.Errorf("reply line for a %d-byte TXT is %d octets; want at most 512", len(text), n)
		}
		if !utf8.ValidString(got) || !strings.HasPrefix(got, "Service unavailable; Client host [2001:db8::1] blocked using zen.example; "+text[:10]) {
			t.Errorf("RejectText = %.120q...; want valid UTF-8 starting with the text", got)
		}
	}
}

// TestS25RepeatedFullSpec: two whole E-MailRelay specs given as two
// --dnsbl (joined with commas, as E-MailRelay joins them) said
// `"127.0.0.1:53": not a DNS zone name` (rev25's note): the error now says
// what happened and what to write instead.
func TestS25RepeatedFullSpec(t *testing.T) {
	_, err := ParseEmailRelay("127.0.0.1:53,500,1,a.example,127.0.0.1:53,500,1,b.example")
	if err == nil || !strings.Contains(err.Error(), "is a DNS server where a zone is expected") {
		t.Errorf("two whole specs joined: %v; want an error saying a DNS server stands where a zone should", err)
	}
	if _, err := ParseEmailRelay("127.0.0.1:53,500,1,a.example,b.example"); err != nil {
		t.Errorf("one spec with two zones: %v", err)
	}
}
