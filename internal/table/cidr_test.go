package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCIDRTable(t *testing.T) {
	file := `
# cidr_table(5) example: rule order matters.
192.168.1.1             OK
192.168.0.0/16          REJECT
2001:db8::1             OK
2001:db8::/32           REJECT
[10.1.0.0]/16           bracketed
[10.2.0.0/16]           bracketed-all
if 172.16.0.0/12
172.16.5.0/24           inside-if
!172.16.0.0/16          not-172.16
endif
! 100.64.0.0/10         spaced-negation
0.0.0.0/0               any-v4
`
	tb := mustOpen(t, "cidr:"+writeFile(t, "client.cidr", file))
	for _, tc := range []struct {
		key, want string
		wantOK    bool
	}{
		{"192.168.1.1", "OK", true},
		{"192.168.1.2", "REJECT", true},
		{"[192.168.1.1]", "OK", true},
		{"2001:db8::1", "OK", true},
		{"2001:0db8:0000::0001", "OK", true}, // compared in binary
		{"2001:db8::2", "REJECT", true},
		{"2001:db9::1", "", false}, // no v6 catch-all; !100.64/10 is v4 only
		{"10.1.2.3", "bracketed", true},
		{"10.2.2.3", "bracketed-all", true},
		{"172.16.5.9", "inside-if", true},
		{"172.17.0.1", "not-172.16", true},
		{"172.16.6.1", "spaced-negation", true},
		{"100.64.0.1", "any-v4", true},
		{"not an address", "", false},
		{"192.168.1.1%eth0", "", false},
	} {
		got, ok := tb.Lookup(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestCIDRErrors(t *testing.T) {
	file := strings.Join([]string{
		"192.168.1.0/16 host-bits", // 1
		"192.168.1.0/33 too-long",  // 2
		"192.168.1 short",          // 3
		"10.0.0.0/8",               // 4 no result
		"[10.0.0.0 unclosed",       // 5
		"[10.0.0.0]x garbage",      // 6
		"fe80::1%eth0 zone",        // 7
		"010.0.0.1 octal",          // 8
		"endif",                    // 9
		"if",                       // 10
		"10.0.0.0/ empty-len",      // 11
		"2001:db8::/32 fine",       // 12
	}, "\n")
	path := writeFile(t, "bad.cidr", file)
	_, err := Open("cidr:" + path)
	if err == nil {
		t.Fatal("Open succeeded; want errors")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, strings.TrimPrefix(e.Error(), path))
	}
	want := []string{
		`:1: non-null host address bits in "192.168.1.0/16", perhaps you should use "192.168.0.0/16" instead`,
		`:2: bad prefix length in "192.168.1.0/33"`,
		`:3: bad address pattern "192.168.1": want an IPv4 or IPv6 address with an optional /prefix length`,
		`:4: expected format: network/prefix whitespace result, got "10.0.0.0/8"`,
		`:5: missing ']' in "[10.0.0.0"`,
		`:6: garbage after ']' in "[10.0.0.0]x"`,
		`:7: bad address pattern "fe80::1%eth0": want an IPv4 or IPv6 address with an optional /prefix length`,
		`:8: bad address pattern "010.0.0.1": want an IPv4 or IPv6 address with an optional /prefix length`,
		`:9: endif without matching if`,
		`:10: missing pattern after if`,
		`:11: bad prefix length in "10.0.0.0/"`,
		`:12: missing endif: more ifs than endifs`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}
