package table

import (
	"net/netip"
	"testing"
)

func netip0() netip.Addr { return netip.Addr{} }

func TestLookupAddressOrder(t *testing.T) {
	path := writeFile(t, "sender_access", `
# Each key names the rule that matched, so the order is visible.
user@sub.example.com    full
sub.example.com         domain
example.com             parent
.example.com            dotparent
.other.example          dotonly
org                     tld
user@                   localpart
postmaster@             pm
<>                      null
upper@CASE.example      case
`)
	tb := mustOpen(t, "hash:"+path)
	for _, tc := range []struct {
		addr, want string
		wantOK     bool
	}{
		{"user@sub.example.com", "full", true},
		{"USER@Sub.Example.Com", "full", true},
		{"<user@sub.example.com>", "full", true},
		{"other@sub.example.com", "domain", true},
		{"other@deep.sub.example.com", "domain", true},
		{"other@example.com", "parent", true},
		{"other@a.b.example.com", "parent", true}, // "P" before ".P"
		{"x@a.other.example", "dotonly", true},    // ".P" matches subdomains
		{"x@other.example", "", false},            // but not the domain itself
		{"x@example.org", "tld", true},            // parents run up to the TLD
		{"user@elsewhere.net", "localpart", true}, // user@ comes last
		{"user@example.com", "parent", true},      // domain before user@
		{"postmaster", "pm", true},                // no domain: user@ only
		{"", "null", true},
		{"<>", "null", true},
		{"upper@case.example", "case", true},
		{"nobody@example.net", "", false},
		{"x@example.com.", "parent", true}, // a trailing dot is ignored
		{"x@[192.0.2.1]", "", false},
	} {
		got, ok := tb.LookupAddress(tc.addr)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("LookupAddress(%q) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestLookupAddressPatternTables(t *testing.T) {
	re := writeFile(t, "re", `
/^user@/        localpart
/^<>$/          null
/example\.com$/ domain
`)
	tb := mustOpen(t, "regexp:"+re)
	for _, tc := range []struct {
		addr, want string
		wantOK     bool
	}{
		{"user@x.example", "localpart", true},
		{"User@x.example", "localpart", true}, // case-insensitive by default
		{"a@sub.example.com", "domain", true},
		{"<>", "null", true},
		{"a@example.org", "", false},
	} {
		got, ok := tb.LookupAddress(tc.addr)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("regexp LookupAddress(%q) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.wantOK)
		}
	}
	// A regexp table sees only the whole address: no user@ or domain split.
	tb = mustOpen(t, "regexp:"+writeFile(t, "re2", "/^example\\.com$/ domain\n"))
	if got, ok := tb.LookupAddress("a@example.com"); ok {
		t.Errorf("regexp LookupAddress split the address: got %q", got)
	}
	// cidr tables never match addresses.
	tb = mustOpen(t, "cidr:"+writeFile(t, "cidr", "0.0.0.0/0 OK\n::/0 OK\n"))
	for _, addr := range []string{"a@192.0.2.1", "192.0.2.1", "a@[192.0.2.1]"} {
		if got, ok := tb.LookupAddress(addr); ok {
			t.Errorf("cidr LookupAddress(%q) = %q, true; want not found", addr, got)
		}
	}
}

func TestLookupClientOrder(t *testing.T) {
	path := writeFile(t, "client_access", `
mail.example.com     host
example.com          parent
.dyn.example.net     dotparent
192.0.2.10           ip
192.0.2              net24
198.51               net16
203                  net8
2001:db8::1          ip6
2001:db8:            ip6-cut1
2001:db8             ip6-cut2
unknown              literal-unknown
`)
	tb := mustOpen(t, "hash:"+path)
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		ip         netip.Addr
		host, want string
		wantOK     bool
	}{
		{ip("192.0.2.10"), "mail.example.com", "host", true},
		{ip("192.0.2.10"), "MAIL.Example.COM.", "host", true},
		{ip("192.0.2.10"), "other.example.com", "parent", true},
		{ip("192.0.2.10"), "a.dyn.example.net", "dotparent", true},
		{ip("192.0.2.10"), "", "ip", true},
		{ip("192.0.2.10"), "nowhere.test", "ip", true},
		{ip("192.0.2.11"), "", "net24", true},
		{ip("198.51.100.1"), "", "net16", true},
		{ip("203.0.113.5"), "", "net8", true},
		{ip("::ffff:192.0.2.10"), "", "ip", true}, // mapped: looked up as IPv4
		{ip("2001:db8::1"), "", "ip6", true},
		{ip("2001:db8::2"), "", "ip6-cut1", true},
		{ip("2001:db8:1::2"), "", "ip6-cut2", true},
		{ip("2001:DB8:0:0:0:0:0:1"), "", "ip6", true}, // canonical text form
		{ip("10.0.0.1"), "unknown", "literal-unknown", true},
		{ip("10.0.0.1"), "", "", false},
		{netip0(), "", "", false},
		{ip("10.0.0.1"), "192.0.2.10", "ip", true}, // a numeric "hostname" has no parents
	} {
		got, ok := tb.LookupClient(tc.ip, tc.host)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("LookupClient(%v, %q) = %q, %v; want %q, %v", tc.ip, tc.host, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestLookupClientPatternTables(t *testing.T) {
	ip := netip.MustParseAddr
	cidr := mustOpen(t, "cidr:"+writeFile(t, "c", "192.0.2.0/24 v4\n2001:db8::/32 v6\n"))
	re := mustOpen(t, "pcre:"+writeFile(t, "r", "/\\.dyn\\.example$/ dyn\n/^192\\.0\\.2\\./ net\n/^mail\\./ mail\n"))
	for _, tc := range []struct {
		tb         *Table
		ip         netip.Addr
		host, want string
		wantOK     bool
	}{
		{cidr, ip("192.0.2.7"), "host.example", "v4", true},
		{cidr, ip("2001:db8::7"), "", "v6", true},
		{cidr, ip("::ffff:192.0.2.7"), "", "v4", true},
		{cidr, ip("198.51.100.1"), "", "", false},
		{re, ip("192.0.2.1"), "mail.dyn.example", "dyn", true}, // hostname first
		{re, ip("192.0.2.1"), "mail.static.example", "mail", true},
		{re, ip("192.0.2.1"), "host.example", "net", true}, // then the address
		{re, ip("198.51.100.1"), "dyn.example", "", false}, // no parent search
	} {
		got, ok := tc.tb.LookupClient(tc.ip, tc.host)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: LookupClient(%v, %q) = %q, %v; want %q, %v", tc.tb.Spec(), tc.ip, tc.host, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestLookupDomain(t *testing.T) {
	path := writeFile(t, "transport", `
example.com      smtp:[relay.example.com]
.example.com     smtp:[sub-relay.example.com]
parent.example   relay:parent
*                smtp:[default.example]
`)
	tb := mustOpen(t, "hash:"+path)
	for _, tc := range []struct {
		domain string
		m      DomainMatch
		want   string
	}{
		{"example.com", DomainMatch{}, "smtp:[relay.example.com]"},
		{"Example.COM.", DomainMatch{}, "smtp:[relay.example.com]"},
		{"a.example.com", DomainMatch{}, "smtp:[sub-relay.example.com]"},
		{"a.b.example.com", DomainMatch{}, "smtp:[sub-relay.example.com]"},
		{"a.parent.example", DomainMatch{}, "smtp:[default.example]"}, // no .parent.example key
		{"a.parent.example", DomainMatch{ParentMatchesSubdomains: true}, "relay:parent"},
		{"a.example.com", DomainMatch{ParentMatchesSubdomains: true}, "smtp:[relay.example.com]"},
		{"elsewhere.org", DomainMatch{}, "smtp:[default.example]"},
		{"", DomainMatch{}, "smtp:[default.example]"},
	} {
		got, ok := tb.LookupDomainWith(tc.domain, tc.m)
		if got != tc.want || !ok {
			t.Errorf("LookupDomainWith(%q, %+v) = %q, %v; want %q, true", tc.domain, tc.m, got, ok, tc.want)
		}
	}
	if got, ok := tb.LookupDomain("a.example.com"); got != "smtp:[sub-relay.example.com]" || !ok {
		t.Errorf("LookupDomain(%q) = %q, %v; want the .example.com entry", "a.example.com", got, ok)
	}
	noWild := mustOpen(t, "inline:{ example.com=local: }")
	if got, ok := noWild.LookupDomain("sub.example.com"); ok {
		t.Errorf("LookupDomain matched %q through a parent key by default", got)
	}
}

func TestLookupPlain(t *testing.T) {
	tb := mustOpen(t, "hash:"+writeFile(t, "m", "user@example.com value\n"))
	for _, tc := range []struct {
		key, want string
		wantOK    bool
	}{
		{"user@example.com", "value", true},
		{"USER@EXAMPLE.COM", "value", true},
		{"example.com", "", false}, // no address magic in Lookup
		{"", "", false},
	} {
		got, ok := tb.Lookup(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestRevTabLookupAddressResolved: Postfix looks an address up as
// trivial-rewrite resolved it, so a user@domain entry also catches the
// same mailbox written with a source route or a trailing dot; looked up as
// given, both stepped past the entry (and the mail still reached the
// mailbox).
func TestRevTabLookupAddressResolved(t *testing.T) {
	tb := mustOpen(t, "hash:"+writeFile(t, "recipient_access", "blocked@relay.example  REJECT\n"))
	re := mustOpen(t, "regexp:"+writeFile(t, "recipient_access.regexp", "/^blocked@relay\\.example$/  REJECT\n"))
	for _, addr := range []string{
		"blocked@relay.example",
		"blocked@relay.example.",
		"@elsewhere.example:blocked@relay.example",
		"@a.example,@b.example:BLOCKED@RELAY.EXAMPLE.",
		"<@elsewhere.example:blocked@relay.example>",
	} {
		for _, tab := range []*Table{tb, re} {
			if got, ok := tab.LookupAddress(addr); !ok || got != "REJECT" {
				t.Errorf("%s: LookupAddress(%q) = %q, %v; want REJECT", tab.Spec(), addr, got, ok)
			}
		}
	}
	for _, addr := range []string{"blocked@", "@:", "other@relay.example."} {
		if got, ok := tb.LookupAddress(addr); ok {
			t.Errorf("LookupAddress(%q) = %q; want no match", addr, got)
		}
	}
}
func TestStripExtension(t *testing.T) {
	tests := []struct{ addr, delims, want string }{
		{"user+tag@example.com", "+", "user@example.com"},
		{"user+@example.com", "+", "user@example.com"},
		{"+tag@example.com", "+", ""},
		{"user@example.com", "+", ""},
		{"user-a+b@example.com", "+-", "user@example.com"},
		{"owner-list@example.com", "-", ""},
		{"list-request@example.com", "-", ""},
		{"owner-list+x@example.com", "+", "owner-list@example.com"},
		{"Postmaster+x@example.com", "+", "Postmaster@example.com"},
		{"mailer-daemon@example.com", "-", ""},
		{"double-bounce@example.com", "-", ""},
		{"user+tag", "+", "user"},
		{"user+tag@example.com", "", ""},
	}
	for _, tt := range tests {
		if got := StripExtension(tt.addr, tt.delims); got != tt.want {
			t.Errorf("StripExtension(%q, %q) = %q; want %q", tt.addr, tt.delims, got, tt.want)
		}
	}
}

// TestLookupAddressExtOrder: with a recipient delimiter, access(5)'s
// extension order: user+foo@domain, user@domain, domain, user+foo@, user@.
func TestLookupAddressExtOrder(t *testing.T) {
	path := writeFile(t, "access", `
user+exact@example.com  exact
user@example.com        bare
example.net             domain
other+foo@              extlocal
other@                  barelocal
`)
	tb := mustOpen(t, "hash:"+path)
	for _, tc := range []struct {
		addr, delims, want string
	}{
		{"user+exact@example.com", "+", "exact"},
		{"user+other@example.com", "+", "bare"},
		{"User+Other@Example.COM.", "+", "bare"}, // case and trailing dot
		{"user-other@example.com", "+-", "bare"},
		{"user+other@example.com", "", ""}, // no delimiter: as given
		{"user+other@example.com", "-", ""},
		{"other+foo@example.net", "+", "domain"}, // domain before user+foo@
		{"other+foo@example.org", "+", "extlocal"},
		{"other+bar@example.org", "+", "barelocal"},
		{"other+bar", "+", "barelocal"},
		{"+user@example.com", "+", ""}, // an empty localpart is not cut
	} {
		got, _ := tb.LookupAddressExt(tc.addr, tc.delims)
		if got != tc.want {
			t.Errorf("LookupAddressExt(%q, %q) = %q; want %q", tc.addr, tc.delims, got, tc.want)
		}
	}
	// Pattern tables see the whole address only, never the address without
	// its extension (a partial key).
	re := mustOpen(t, "regexp:"+writeFile(t, "re", "/^user@example\\.com$/ bare\n"))
	if got, ok := re.LookupAddressExt("user+x@example.com", "+"); ok {
		t.Errorf("regexp table matched the address without its extension: %q", got)
	}
}
