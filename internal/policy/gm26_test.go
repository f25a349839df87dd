package policy

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

type gm26Welcome netip.Addr

func (w gm26Welcome) Welcome(ip netip.Addr, _ string) bool { return ip == netip.Addr(w) }

// TestGM26EnforcerTableSparesWelcomelist: the enforcer's table of blocked
// domains (the Mail list) also named in sender_restrictions and
// recipient_restrictions, under another type, as docs/enforce.md shows
// it: a welcomelisted client sending as a blocked domain is not refused
// by it there either; any other client is, and another table in the same
// lists still applies to the welcomelisted client.
func TestGM26EnforcerTableSparesWelcomelist(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "sender_access")
	other := filepath.Join(dir, "other_access")
	os.WriteFile(access, []byte("partner.example REJECT\n"), 0o644)
	os.WriteFile(other, []byte("bad.example REJECT\n"), 0o644)
	partner, stranger := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	for _, list := range []string{"sender", "recipient"} {
		opts := Options{
			Mail:       []string{"check_sender_access texthash:" + access},
			MailExempt: gm26Welcome(partner),
			Relay:      []string{"permit"},
			Tables:     SetTables{Set: &table.Set{}},
		}
		checks := []string{"check_sender_access hash:" + filepath.Join(dir, ".", "sender_access"), "check_sender_access hash:" + other}
		if list == "sender" {
			opts.Sender = checks
		} else {
			opts.Recipient = checks
		}
		e, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			ip     netip.Addr
			sender string
			refuse bool
		}{
			{partner, "a@partner.example", false},
			{stranger, "a@partner.example", true},
			{partner, "a@bad.example", true},
		} {
			d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: tc.ip, Sender: tc.sender, Recipient: "x@gmail.test"})
			if d.Refuses() != tc.refuse {
				t.Errorf("%s list: Check(%s, %s) = %+v; want refused %v", list, tc.ip, tc.sender, d, tc.refuse)
			}
		}
	}
}
