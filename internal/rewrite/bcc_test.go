package rewrite

import (
	"slices"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestBCC: the lookups cleanup(8) makes for automatic BCC: a recipient's
// and the sender's address, then without the extension, then @domain;
// one address per result, each copy once and never one already a
// recipient; no sender lookup for the null sender; an @domain result or
// a list's later addresses add nothing more.
func TestBCC(t *testing.T) {
	set := &table.Set{}
	c, err := Open(set, Maps{AlwaysBCC: "archive@example.net",
		SenderBCC:    []string{"inline:{ alice@example.org=alice-copy@example.net, @list.example=list-copy@example.net }"},
		RecipientBCC: []string{"inline:{ @example.com=in-copy@example.net, { bob@example.org=Bob <bob-copy@example.net>, other@example.net } }"},
	}, "+")
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Error("Enabled with BCC alone: the header would be rewritten for nothing")
	}
	for _, tt := range []struct {
		from  string
		rcpts []string
		want  []string
	}{
		{"alice+x@example.org", []string{"carol@example.com", "dan@example.com"}, []string{"in-copy@example.net", "alice-copy@example.net", "archive@example.net"}},
		{"", []string{"bob+y@example.org"}, []string{"bob-copy@example.net", "archive@example.net"}},
		{"someone@list.example", []string{"archive@example.net"}, []string{"list-copy@example.net"}},
		{"x@nowhere.example", []string{"y@nowhere.example"}, []string{"archive@example.net"}},
	} {
		if got := c.BCC(tt.from, tt.rcpts); !slices.Equal(got, tt.want) {
			t.Errorf("BCC(%q, %v) = %v; want %v", tt.from, tt.rcpts, got, tt.want)
		}
	}
	if _, err := Open(set, Maps{AlwaysBCC: "@example.net"}, ""); err == nil {
		t.Error("always_bcc = \"@example.net\" accepted")
	}
	if _, err := Open(set, Maps{SenderBCC: []string{"inline:{ a@example.org=@example.net }"}}, ""); err == nil {
		t.Error("a sender_bcc_maps value \"@example.net\" accepted")
	}
}
