package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDoc17NeverBlockRelayDomainForms: relay_domains takes Postfix's forms
// (several names an item, files of names, "!" exclusions: a9311e8), and
// docs/enforce.md says the relay domains are never blocked. An item
// "example.com, other.example" or a file of names reached NeverBlock as
// the raw text, so a refusal blaming other.example blocked the relay's own
// relay domain in sender_access.
func TestDoc17NeverBlockRelayDomainForms(t *testing.T) {
	file := filepath.Join(t.TempDir(), "relay_domains")
	if err := os.WriteFile(file, []byte("filed.example more.example # ours\n!gone.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Domain = "relay.example"
	c.Enforce.NeverBlock = nil
	c.Policy.RelayDomains = []string{"example.com, other.example", "!test.example.com", file}
	got := c.NeverBlock()
	for _, d := range []string{"relay.example", "example.com", "other.example", "filed.example", "more.example"} {
		if !slices.Contains(got, d) {
			t.Errorf("NeverBlock() = %q; want it to hold %q", got, d)
		}
	}
	for _, d := range []string{"test.example.com", "!test.example.com", "gone.example", "example.com, other.example", file} {
		if slices.Contains(got, d) {
			t.Errorf("NeverBlock() = %q; want no %q", got, d)
		}
	}
}
