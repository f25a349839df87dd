package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestMatchListsReadAlike: mynetworks and relay_domains read a match
// list one way (readMatchList): an inline table whose spec holds spaces is
// one pattern in either (mynetworks split it into pieces that were no
// networks), and a file's line with several patterns and a "!" is read
// the same in both.
func TestMatchListsReadAlike(t *testing.T) {
	dir := t.TempDir()
	nets := filepath.Join(dir, "nets")
	os.WriteFile(nets, []byte("!192.0.2.66, 192.0.2.0/24 # office\n\n"), 0o644)
	rules, err := ParseNetworks([]string{"cidr:{ {198.51.100.0/24 OK}, {203.0.113.9 OK} }", nets, ""}, &table.Set{})
	if err != nil {
		t.Fatal(err)
	}
	in := func(ip string) bool {
		for _, r := range rules {
			if r.matches(netip.MustParseAddr(ip)) {
				return !r.Not
			}
		}
		return false
	}
	for ip, want := range map[string]bool{"198.51.100.7": true, "192.0.2.66": false, "192.0.2.1": true, "203.0.113.1": false} {
		if in(ip) != want {
			t.Errorf("%s in mynetworks = %v; want %v", ip, !want, want)
		}
	}
	doms := filepath.Join(dir, "domains")
	os.WriteFile(doms, []byte("!sub.a.example, a.example # ours\n"), 0o644)
	rd, err := parseRelayDomains([]string{doms, ""}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"a.example": true, "x.sub.a.example": false, "b.example": false} {
		if rd.has(d) != want {
			t.Errorf("relay domain %s = %v; want %v", d, !want, want)
		}
	}
}

// TestNetworkTableHoldsEveryone: a cidr: (or pcre:) table in mynetworks
// that holds the whole Internet was taken without a word, although the
// same 0.0.0.0/0 written in the setting or a mynetworks file is refused
// as an open relay. It is refused too; a table of real networks, and a
// negated whole-Internet table, are taken.
func TestNetworkTableHoldsEveryone(t *testing.T) {
	for _, spec := range []string{
		"cidr:{ {127.0.0.0/8 OK}, {0.0.0.0/0 OK} }",
		"cidr:{ {::/0 OK} }",
		"cidr:{ {0.0.0.0/1 OK}, {128.0.0.0/1 OK} }",
		"regexp:{ {/./ OK} }",
	} {
		_, err := ParseNetworks([]string{spec}, &table.Set{})
		if err == nil || !strings.Contains(err.Error(), "open relay") {
			t.Errorf("%s: err %v; want an open-relay refusal", spec, err)
		}
	}
	for _, spec := range []string{"cidr:{ {127.0.0.0/8 OK}, {192.0.2.0/24 OK} }", "!cidr:{ {0.0.0.0/0 OK} }"} {
		if _, err := ParseNetworks([]string{spec, "127.0.0.0/8"}, &table.Set{}); err != nil {
			t.Errorf("%s: %v; want it taken", spec, err)
		}
	}
}
