package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestAud3NegationEverywhere: Postfix's "!pattern" works wherever a
// mynetworks pattern may stand (match_list reads a /file/name's lines as
// patterns too): on a line of a mynetworks file, as one of several
// patterns of a line or of a setting pasted from main.cf
// ("!192.0.2.66, 192.0.2.0/24"), where it negates that pattern alone, and
// "!!" undoes it. A file named inside a file is read, and a table too.
func TestAud3NegationEverywhere(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner")
	os.WriteFile(inner, []byte("!10.1.0.9\n10.1.0.0/16\n"), 0o644)
	file := filepath.Join(dir, "mynetworks")
	os.WriteFile(file, []byte("# Postfix's mynetworks file\n!192.0.2.66\n192.0.2.0/24\n!198.51.100.7, 198.51.100.0/24\n[2001:db8::]/32 !!203.0.113.5\n"+inner+"\n"), 0o644)
	var set table.Set
	checkTrusted(t, &set, []string{file}, map[string]bool{
		"192.0.2.1": true, "192.0.2.66": false, "198.51.100.1": true, "198.51.100.7": false,
		"2001:db8::1": true, "203.0.113.5": true, "10.1.0.1": true, "10.1.0.9": false, "10.2.0.1": false,
	})
	checkTrusted(t, &set, []string{"!192.0.2.66, 192.0.2.0/24", "127.0.0.0/8 !127.0.0.3"}, map[string]bool{
		"192.0.2.1": true, "192.0.2.66": false, "127.0.0.1": true, "127.0.0.3": true,
	})
	if _, err := ParseNetworks([]string{file + "x"}, &set); err == nil {
		t.Error("a missing mynetworks file: no error")
	}
	loop := filepath.Join(dir, "loop")
	os.WriteFile(loop, []byte(loop+"\n"), 0o644)
	if _, err := ParseNetworks([]string{loop}, &set); err == nil {
		t.Error("a mynetworks file that names itself: no error")
	}
}

// TestAud3RelayDomainsAsPostfix: relay_domains reads as Postfix's domain
// lists: an item pasted from main.cf ("relay.example, other.example" or
// with spaces) is several domains, not one that matches nothing; a
// "!domain" excludes that domain and its subdomains, the first pattern
// that matches deciding, in the setting and in a file alike.
func TestAud3RelayDomainsAsPostfix(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "relay_domains")
	os.WriteFile(file, []byte("!no.filed.example filed.example\n"), 0o644)
	rd, err := parseRelayDomains([]string{"relay.example, other.example third.example", "!sub.fourth.example", "fourth.example", file}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{
		"relay.example": true, "other.example": true, "third.example": true, "x.other.example": true,
		"fourth.example": true, "sub.fourth.example": false, "a.sub.fourth.example": false, "b.fourth.example": true,
		"filed.example": true, "no.filed.example": false, "elsewhere.example": false,
	} {
		if got := rd.has(d); got != want {
			t.Errorf("relay_domains has %s = %v; want %v", d, got, want)
		}
	}
	if _, err := parseRelayDomains([]string{"!"}, nil, nil); err == nil {
		t.Error(`relay_domains "!": no error`)
	}
}

// TestAud3ReloadLists: ReloadLists reads a changed mynetworks or
// relay_domains file again; a bad version is reported once, with
// FILE:LINE, and leaves the lists in force.
func TestAud3ReloadLists(t *testing.T) {
	dir := t.TempDir()
	nets := filepath.Join(dir, "mynetworks")
	doms := filepath.Join(dir, "relay_domains")
	os.WriteFile(nets, []byte("192.0.2.0/24\n"), 0o644)
	os.WriteFile(doms, []byte("relay.example\n"), 0o644)
	e, err := New(Options{MyNetworkSpec: []string{nets, "cidr:{{203.0.113.0/24 x}}"}, RelayDomains: []string{doms}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, trusted, relay bool) {
		t.Helper()
		if got := e.Trusted(netip.MustParseAddr("198.51.100.7")); got != trusted {
			t.Errorf("%s: Trusted(198.51.100.7) = %v; want %v", when, got, trusted)
		}
		if got := e.authDestination("u@new.example"); got != relay {
			t.Errorf("%s: new.example a relay domain = %v; want %v", when, got, relay)
		}
	}
	if err := e.ReloadLists(); err != nil {
		t.Errorf("ReloadLists with nothing changed: %v", err)
	}
	check("at start", false, false)
	os.WriteFile(nets, []byte("192.0.2.0/24\n198.51.100.7\n"), 0o644)
	os.WriteFile(doms, []byte("relay.example new.example\n"), 0o644)
	if err := e.ReloadLists(); err != nil {
		t.Fatal(err)
	}
	check("after the edit", true, true)
	os.WriteFile(nets, []byte("192.0.2.0/24\nbogus\n"), 0o644)
	if err := e.ReloadLists(); err == nil || !strings.Contains(err.Error(), nets+":2:") {
		t.Errorf("ReloadLists after a bad edit: %v; want an error naming %s:2", err, nets)
	}
	if err := e.ReloadLists(); err != nil {
		t.Errorf("ReloadLists again, the bad version unchanged: %v; want it reported once", err)
	}
	check("after the bad edit", true, true)
}
