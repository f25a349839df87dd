package rewrite

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestVirtual: virtual_alias_maps as cleanup(8) expands: a list, each
// address looked up again, an address that names itself kept, "@domain"
// keeping the local part, the extension of an address found without it
// carried to each result, a loop ended, and Postfix's limits.
func TestVirtual(t *testing.T) {
	many := make([]string, 1200)
	for i := range many {
		many[i] = "m" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "@big.example"
	}
	for i := range many {
		many[i] = strings.Replace(many[i], "@", string(rune('0'+i/100%10))+string(rune('0'+i/10%10))+string(rune('0'+i%10))+"@", 1)
	}
	spec := "inline:{ { ops@example.com=alice@example.net, team@example.org }, team@example.org=bob@example.org, " +
		"bob@example.org=bob@example.org, @old.example=@new.example, loop1@x.example=loop2@x.example, " +
		"loop2@x.example=loop1@x.example, { everyone@big.example=" + strings.Join(many, ", ") + " } }"
	c, err := Open(&table.Set{}, Maps{Virtual: []string{spec}}, "+")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rcpt    string
		want    []string
		changed bool
	}{
		{"ops@example.com", []string{"alice@example.net", "bob@example.org"}, true},
		{"ops+urgent@example.com", []string{"alice+urgent@example.net", "bob+urgent@example.org"}, true},
		{"carol@old.example", []string{"carol@new.example"}, true},
		{"bob@example.org", []string{"bob@example.org"}, true},
		{"loop1@x.example", []string{"loop1@x.example"}, true},
		{"nobody@example.com", []string{"nobody@example.com"}, false},
	} {
		got, changed := c.Expand(tt.rcpt)
		if !slices.Equal(got, tt.want) || changed != tt.changed {
			t.Errorf("Expand(%q) = %v, %v; want %v, %v", tt.rcpt, got, changed, tt.want, tt.changed)
		}
	}
	if got, _ := c.Expand("everyone@big.example"); len(got) != 1 || got[0] != "everyone@big.example" {
		t.Errorf("an alias of 1,200 addresses (past virtual_alias_expansion_limit) expanded to %d", len(got))
	}
	if _, err := Open(&table.Set{}, Maps{Virtual: []string{"inline:{ a@example.org=bob }"}}, ""); err == nil {
		t.Error("a virtual_alias_maps value \"bob\" (no domain: no local delivery here) accepted")
	}
}
