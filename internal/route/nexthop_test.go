package route

import (
	"strings"
	"testing"
)

func TestSplitResult(t *testing.T) {
	tests := []struct{ in, transport, nexthop string }{
		{"smtp:[relay.example]:587", "smtp", "[relay.example]:587"},
		{":[relay.example]", "", "[relay.example]"},
		{"out_default:", "out_default", ""},
		{"out_default", "out_default", ""},
		{":", "", ""},
		{"smtp:[2001:db8::1]:25", "smtp", "[2001:db8::1]:25"},
		{"error:5.1.1 text: with colons", "error", "5.1.1 text: with colons"},
		{" relay : host ", "relay", "host"},
	}
	for _, tt := range tests {
		tr, nh := SplitResult(tt.in)
		if tr != tt.transport || nh != tt.nexthop {
			t.Errorf("SplitResult(%q) = %q, %q; want %q, %q", tt.in, tr, nh, tt.transport, tt.nexthop)
		}
	}
}

func TestParseNextHop(t *testing.T) {
	tests := []struct {
		in   string
		want NextHop
		str  string
	}{
		{"example.com", NextHop{Host: "example.com", MX: true}, "example.com"},
		{"Example.COM.", NextHop{Host: "example.com", MX: true}, "example.com"},
		{"mx.example.com:2525", NextHop{Host: "mx.example.com", Port: 2525, MX: true}, "mx.example.com:2525"},
		{"[mail.example.com]", NextHop{Host: "mail.example.com"}, "[mail.example.com]"},
		{"[mail.example.com]:587", NextHop{Host: "mail.example.com", Port: 587}, "[mail.example.com]:587"},
		{"[mail.example.com]:submission", NextHop{Host: "mail.example.com", Port: 587}, "[mail.example.com]:587"},
		{"[mail.example.com]:SMTPS", NextHop{Host: "mail.example.com", Port: 465}, "[mail.example.com]:465"},
		{"[192.0.2.1]", NextHop{Host: "192.0.2.1"}, "[192.0.2.1]"},
		{"[192.0.2.1]:25", NextHop{Host: "192.0.2.1", Port: 25}, "[192.0.2.1]:25"},
		{"[2001:DB8::1]:25", NextHop{Host: "2001:db8::1", Port: 25}, "[2001:db8::1]:25"},
		{"[IPv6:2001:db8::1]", NextHop{Host: "2001:db8::1"}, "[2001:db8::1]"},
		{"[::ffff:192.0.2.1]", NextHop{Host: "192.0.2.1"}, "[192.0.2.1]"},
		{"bücher.example", NextHop{Host: "bücher.example", MX: true}, "bücher.example"},
	}
	for _, tt := range tests {
		got, err := ParseNextHop(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseNextHop(%q) = %+v (%q), %v; want %+v (%q)", tt.in, got, got.String(), err, tt.want, tt.str)
		}
	}
	for _, in := range []string{
		"", "[", "[host", "[host]x", "[host]:", "host:", ":25", "host:0", "host:65536", "host:+25",
		"host:smtpx", "192.0.2.1", "2001:db8::1", "[IPv6:192.0.2.1]", "[fe80::1%eth0]",
		"a..example", ".example", "[a], [b]", "a b", "a@b", "[]", "[]:25",
		strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 127) + "com",
	} {
		if got, err := ParseNextHop(in); err == nil {
			t.Errorf("ParseNextHop(%q) = %+v, nil; want an error", in, got)
		}
	}
}

// FuzzParseNextHop: no input panics; what parses has a host and a valid
// port, and its String form parses back to the same next hop.
func FuzzParseNextHop(f *testing.F) {
	for _, s := range []string{
		"smtp:[relay.example]:587", ":[relay.example]", "out_default:", "relay:mx.example:2525",
		"smtp:[IPv6:2001:db8::1]:25", "error:5.1.1 no", "x:[192.0.2.1]", "x:Example.COM.",
		"x:[::ffff:1.2.3.4]", "x:host:smtp", "x:[a]:", "x:[a]]", "x:a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		transport, hop := SplitResult(s)
		if strings.Contains(transport, ":") {
			t.Fatalf("SplitResult(%q): transport %q contains ':'", s, transport)
		}
		n, err := ParseNextHop(hop)
		if err != nil {
			return
		}
		if n.Host == "" || n.Port < 0 || n.Port > 65535 || strings.ContainsAny(n.Host, "[] \t\r\n") {
			t.Fatalf("ParseNextHop(%q) = %+v", hop, n)
		}
		if n.Literal() && n.MX {
			t.Fatalf("ParseNextHop(%q) = %+v: an address with MX lookup", hop, n)
		}
		again, err := ParseNextHop(n.String())
		if err != nil || again != n {
			t.Fatalf("ParseNextHop(%q) = %+v, %v; String of %+v does not parse back", n.String(), again, err, n)
		}
	})
}
