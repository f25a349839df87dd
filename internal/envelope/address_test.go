package envelope

import (
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     string // String() of the result; "" means an error is wanted
		indirect bool
	}{
		{"user@example.com", "user@example.com", false},
		{"User@EXAMPLE.com.", "User@example.com", false},
		{`"john doe"@example.com`, `"john doe"@example.com`, false},
		{`"user@other.com"@relay.example`, `"user@other.com"@relay.example`, true},
		{"user%other.com@relay.example", "user%other.com@relay.example", true},
		{"other.com!user@relay.example", "other.com!user@relay.example", true},
		{"@relay.example:user@other.com", "user@other.com", true},
		{"@a.example,@b.example:user@other.com", "user@other.com", true},
		{"user@[192.0.2.1]", "user@[192.0.2.1]", false},
		{"user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]", false},
		{"user@[::ffff:192.0.2.1]", "user@[192.0.2.1]", false},
		{"josé@exämple.com", "josé@exämple.com", false},
		{"a@b@example.com", "", false},
		{"user", "", false},
		{"@example.com", "", false},
		{"user@", "", false},
		{"user@exa mple.com", "", false},
		{"user@-bad.com", "", false},
		{"user@example..com", "", false},
		{"user@[999.1.1.1]", "", false},
		{`"unterminated@example.com`, "", false},
		{"@relay.example", "", false},
		{"us<er@example.com", "", false},
	} {
		a, err := Parse(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %+v; want error", tc.in, a)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q) = %v", tc.in, err)
			continue
		}
		if got := a.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q; want %q", tc.in, got, tc.want)
		}
		if a.Indirect() != tc.indirect {
			t.Errorf("Parse(%q).Indirect() = %v; want %v", tc.in, a.Indirect(), tc.indirect)
		}
	}
}

func TestInDomains(t *testing.T) {
	doms := []string{"example.com", ".sub.example.org"}
	for d, want := range map[string]bool{
		"example.com": true, "EXAMPLE.COM.": true, "mx.example.com": true, "evilexample.com": false,
		"example.com.evil.net": false, "sub.example.org": false, "a.sub.example.org": true, "example.org": false,
	} {
		if got := InDomains(d, doms); got != want {
			t.Errorf("InDomains(%q) = %v; want %v", d, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"user@example.com", `"a b"@c.d`, "@r:u@d.e", "u%v@w.x", "u@[1.2.3.4]", "u@[IPv6:::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		// What parses re-parses to the same address.
		b, err := Parse(a.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(String()=%q) = %v", s, a.String(), err)
		}
		if b.Local != a.Local || b.Domain != a.Domain {
			t.Fatalf("round trip %q: %+v then %+v", s, a, b)
		}
	})
}

// TestTab18UnderscoreDomain: an underscore in a domain label is taken,
// as Postfix's smtpd takes it.
func TestTab18UnderscoreDomain(t *testing.T) {
	for _, s := range []string{"s@a_b.example", "s@x-y_z-1.example", "r@_dmarc.example"} {
		a, err := Parse(s)
		if err != nil || a.String() != s {
			t.Errorf("Parse(%q) = %v, %v", s, a, err)
		}
	}
}
