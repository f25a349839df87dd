package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestPol22RelayDomainsTableEditedToHoldEveryDomain: a relay_domains
// table that holds every domain is refused at start, but tables reload
// when their file changes without that check: one edit ("/./ OK") and
// anyone could relay anywhere. Such a table now holds no domain.
func TestPol22RelayDomainsTableEditedToHoldEveryDomain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay_domains.pcre")
	if err := os.WriteFile(path, []byte("/^relay\\.example$/ OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var set table.Set
	e := engine(t, Options{RelayDomains: []string{"pcre:" + path}, Tables: SetTables{Set: &set}})
	check := func(rcpt string) Decision {
		return e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
	}
	if d := check("user@relay.example"); d.Refuses() {
		t.Fatalf("user@relay.example from outside: %s; want it accepted", d.Reply())
	}
	if err := os.WriteFile(path, []byte("/^relay\\.example$/ OK\n/./ OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := set.ReloadAll(); errs != nil {
		t.Fatal(errs)
	}
	if d := check("victim@elsewhere.example"); !d.Refuses() {
		t.Errorf("after the table was edited to hold /./, victim@elsewhere.example from outside is accepted: an open relay")
	}
}
