package table

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// FuzzParseText: no input panics; a parsed table written back out as
// "key value" lines parses to the same table.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"example.com REJECT\n",
		"# c\n  # c\nkey value\n  more\n\nKey2\tv\r\n",
		"\"a b\"@example.com OK\nx\\ y z\n",
		"  leading\nlonely\n\"unbalanced v\n",
		"dup 1\ndup 2\nalias: x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c, err := parseContents("hash", "fuzz", []byte(data))
		if err != nil {
			return
		}
		keys := make([]string, 0, len(c.fixed))
		for k := range c.fixed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + " " + c.fixed[k].value + "\n")
			if v, ok := c.find(k, true); !ok || v != c.fixed[k].value {
				t.Fatalf("find(%q) = %q, %v; want %q", k, v, ok, c.fixed[k].value)
			}
		}
		again, err := parseContents("hash", "fuzz", []byte(b.String()))
		if err != nil {
			t.Fatalf("reparse of %q: %v", b.String(), err)
		}
		if len(again.fixed) != len(c.fixed) {
			t.Fatalf("reparse has %d keys; want %d", len(again.fixed), len(c.fixed))
		}
		for k, e := range c.fixed {
			if again.fixed[k].value != e.value {
				t.Fatalf("reparse: key %q = %q; want %q", k, again.fixed[k].value, e.value)
			}
		}
	})
}

// FuzzParseRegexp: no input panics, neither in parsing nor in lookups.
func FuzzParseRegexp(f *testing.F) {
	for _, s := range []string{
		"/^(.*)-outgoing@(.*)$/ 550 Use ${1}@${2} instead\n",
		"if !/^owner-/\n/a/i x\nendif\n",
		"/(a)\\1/ x\n/(?=a)/ y\n!/(a)/ $1\n",
		"~^[[:alnum:]+/]{60,}$~ OK\n/a/!/b/ both\n",
		"/ a b # c/x $$ and $(1)\n/x/AEUXs y\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data string, pcre bool) {
		typ := "regexp"
		if pcre {
			typ = "pcre"
		}
		c, err := parseContents(typ, "fuzz", []byte(data))
		if err != nil {
			return
		}
		for _, key := range []string{"", "a", "user@example.com", data} {
			c.find(key, true)
		}
	})
}

// FuzzParseCIDR: no input panics; a parsed table written back out parses
// to the same rules.
func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{
		"192.168.1.1 OK\n192.168.0.0/16 REJECT\n2001:db8::/32 x\n",
		"if 10.0.0.0/8\n!10.1.0.0/16 a\nendif\n[::1] b\n[10.0.0.0/8] c\n",
		"192.168.1.0/16 x\n010.0.0.1 y\nfe80::1%eth0 z\n",
		"if ! ::ffff:1.2.3.4/128\nendif\nendif\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		c, err := parseContents("cidr", "fuzz", []byte(data))
		if err != nil {
			return
		}
		rules := c.cidr.rules
		var b strings.Builder
		var open []int
		for i, r := range rules {
			for len(open) > 0 && rules[open[len(open)-1]].end == i {
				b.WriteString("endif\n")
				open = open[:len(open)-1]
			}
			neg := ""
			if r.negate {
				neg = "!"
			}
			if r.isIf {
				b.WriteString("if " + neg + r.prefix.String() + "\n")
				open = append(open, i)
			} else {
				b.WriteString(neg + r.prefix.String() + " " + r.result + "\n")
			}
			c.cidr.lookup(r.prefix.Addr())
		}
		for range open {
			b.WriteString("endif\n")
		}
		again, err := parseContents("cidr", "fuzz", []byte(b.String()))
		if err != nil {
			t.Fatalf("reparse of %q: %v", b.String(), err)
		}
		if len(again.cidr.rules) != len(rules) {
			t.Fatalf("reparse has %d rules; want %d", len(again.cidr.rules), len(rules))
		}
		for i, r := range again.cidr.rules {
			r.line = rules[i].line
			if r != rules[i] {
				t.Fatalf("reparse rule %d = %+v; want %+v", i, r, rules[i])
			}
		}
		c.find("192.0.2.1", true)
		c.find("2001:db8::1", true)
		c.cidr.lookup(netip.IPv6Unspecified())
	})
}

// FuzzParseAction: no input panics; String round-trips; a reply is a
// 4xx/5xx code with printable one-line text.
func FuzzParseAction(f *testing.F) {
	for _, s := range []string{
		"OK", "12345", "REJECT 5.7.1 go away", "450 4.7.1 later", "DEFER_IF_PERMIT",
		"FILTER smtp:[127.0.0.1]:10025", "PREPEND X-A: b", "REDIRECT a@b", "BCC a@b",
		"permit_mynetworks, reject_unauth_destination", "reject_rbl_client zen.example",
		"DISCARD", "HOLD x", "WARN y", "INFO z", "DUNNO", "frob", "",
		// fuzz26: a table value of a megabyte was quoted whole in the error.
		strings.Repeat("x", 4000), "FILTER " + strings.Repeat("x", 4000), "REDIRECT " + strings.Repeat("x", 4000),
		"PREPEND " + strings.Repeat("x", 4000), "a:" + strings.Repeat("x", 4000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAction(s)
		if err != nil {
			// The error lands in the log and on the operator's terminal: it
			// quotes the value clipped, however long the table line was.
			if n := len(err.Error()); n > 600 {
				t.Fatalf("ParseAction(%d bytes): error of %d bytes: %.200q...", len(s), n, err.Error())
			}
			return
		}
		again, err := ParseAction(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAction(%q) = %+v; String %q parses to %+v, %v", s, a, a.String(), again, err)
		}
		code, enh, text := a.Reply("")
		if code == 0 {
			return
		}
		if code < 400 || code > 599 || !reply.IsEnhanced(enh) || enh[0] != byte('0'+code/100) {
			t.Fatalf("Reply() = %d %q; want a 4xx/5xx code with a matching enhanced code", code, enh)
		}
		if !utf8.ValidString(text) || strings.ContainsAny(text, "\r\n\x00") {
			t.Fatalf("Reply() text %q is not one printable line", text)
		}
	})
}

// FuzzLookupAddressExt: no address panics, with any delimiters; without
// delimiters it is LookupAddress; an address that is itself a key finds
// its own entry first, whatever the delimiters.
func FuzzLookupAddressExt(f *testing.F) {
	for _, s := range [][2]string{
		{"user+tag@example.com", "+"}, {"+@", "+"}, {"a-b+c@x.y.", "+-"}, {"<u+@>", "+"},
		{"owner-l+x@d", "-+"}, {"@a,@b:u+x@d", "+"}, {"u+x", "+"}, {"\x00+@\xff", "\xff"},
	} {
		f.Add(s[0], s[1])
	}
	c, err := parseContents("hash", "fuzz", []byte("user@example.com bare\nexample.com domain\nuser+tag@ extlocal\nuser@ local\n"))
	if err != nil {
		f.Fatal(err)
	}
	tb := &Table{}
	tb.cur.Store(c)
	f.Fuzz(func(t *testing.T, addr, delims string) {
		got, ok := tb.LookupAddressExt(addr, delims)
		g0, ok0 := tb.LookupAddressExt(addr, "")
		if g1, ok1 := tb.LookupAddress(addr); g0 != g1 || ok0 != ok1 {
			t.Fatalf("LookupAddressExt(%q, \"\") = %q, %v; LookupAddress = %q, %v", addr, g0, ok0, g1, ok1)
		}
		if v, isKey := c.find(strings.ToLower(addr), true); isKey && !strings.ContainsAny(addr, "<> \t") && resolvedForm(addr) == addr && got != v {
			t.Fatalf("LookupAddressExt(%q, %q) = %q, %v; the address is a key for %q", addr, delims, got, ok, v)
		}
	})
}
