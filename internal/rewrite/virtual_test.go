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
		{"nobody@example.com", []string{"nobody@example.com"}, false},
	} {
		got, changed, err := c.Expand(tt.rcpt)
		if !slices.Equal(got, tt.want) || changed != tt.changed || err != nil {
			t.Errorf("Expand(%q) = %v, %v; want %v, %v", tt.rcpt, got, changed, tt.want, tt.changed)
		}
	}
	// Past Postfix's limits the message is not accepted (cleanup_map1n.c:
	// "unreasonable virtual_alias_maps map nesting/expansion size --
	// message not accepted"): an error, never the alias sent on as it is.
	for _, rcpt := range []string{"everyone@big.example", "loop1@x.example"} {
		if got, _, err := c.Expand(rcpt); err == nil {
			t.Errorf("Expand(%q) = %v, no error; want the expansion refused", rcpt, got)
		}
	}
	if _, err := Open(&table.Set{}, Maps{Virtual: []string{"inline:{ a@example.org=bob }"}}, ""); err == nil {
		t.Error("a virtual_alias_maps value \"bob\" (no domain: no local delivery here) accepted")
	}
}

// TestRevS15VirtualLoops: a loop in virtual_alias_maps (a -> b -> a, or a
// longer one through a list) made the relay accept the message and send it
// upstream to the looping address as it was, without a word in the log
// (the a <-> b case never reached the limits); Postfix refuses such a
// message for now ("unreasonable ... map nesting -- message not
// accepted"). An address that expands to itself once is still kept, and
// a diamond (two aliases naming one address) is no loop.
func TestRevS15VirtualLoops(t *testing.T) {
	spec := "inline:{ a@x.example=b@x.example, b@x.example=a@x.example, " +
		"{ l1@x.example=keep@x.example, l2@x.example }, l2@x.example=l3@x.example, l3@x.example=l1@x.example, " +
		"{ y@x.example=y@x.example, z@x.example }, z@x.example=y@x.example, " +
		"{ d@x.example=d1@x.example, d2@x.example }, d1@x.example=end@x.example, d2@x.example=end@x.example }"
	c, err := Open(&table.Set{}, Maps{Virtual: []string{spec}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"a@x.example", "l1@x.example", "L2@X.example"} {
		if got, _, err := c.Expand(rcpt); err == nil {
			t.Errorf("Expand(%q) = %v, no error; want the loop refused", rcpt, got)
		}
	}
	for rcpt, want := range map[string][]string{
		"y@x.example": {"y@x.example"},
		"z@x.example": {"y@x.example"},
		"d@x.example": {"end@x.example"},
	} {
		if got, _, err := c.Expand(rcpt); err != nil || !slices.Equal(got, want) {
			t.Errorf("Expand(%q) = %v, %v; want %v", rcpt, got, err, want)
		}
	}
}
