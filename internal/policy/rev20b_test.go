package policy

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRev20bNetworkTableEditedToHoldEveryone: a cidr: table in
// mynetworks that holds the whole Internet is refused at start, but the
// table is reloaded when its file changes (and on SIGHUP) without that
// check, although etc/relaykeeper.toml says such a table "is refused":
// one edit ("0.0.0.0/0 OK") and every client could relay, silently. A
// table rule that holds every address now holds no one.
func TestRev20bNetworkTableEditedToHoldEveryone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mynetworks.cidr")
	if err := os.WriteFile(path, []byte("192.0.2.0/24 OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var set table.Set
	rules, err := ParseNetworks([]string{"cidr:" + path}, &set)
	if err != nil || len(rules) != 1 {
		t.Fatalf("ParseNetworks: %v, %d rules", err, len(rules))
	}
	in, out := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("203.0.113.9")
	if !rules[0].matches(in) || rules[0].matches(out) {
		t.Fatal("the table does not hold what it lists")
	}
	if err := os.WriteFile(path, []byte("192.0.2.0/24 OK\n0.0.0.0/0 OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := set.ReloadAll(); errs != nil {
		t.Fatal(errs)
	}
	if rules[0].matches(out) {
		t.Errorf("after the table was edited to hold 0.0.0.0/0, %s is in mynetworks: an open relay", out)
	}
}
