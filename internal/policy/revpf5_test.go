package policy

import (
	"context"
	"net/netip"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRevPF5UnknownClientName: a client without a verified name is looked
// up in check_client_access tables by the name "unknown" before its
// address, and one without a PTR name likewise in
// check_reverse_client_hostname_access, as Postfix's smtpd looks up
// state->name and state->reverse_name: a regexp table's /^unknown$/ rule
// refuses it, and a negated rule (!/\.example\.com$/ DUNNO) matches it
// before the address is looked at.
func TestRevPF5UnknownClientName(t *testing.T) {
	for _, c := range []struct {
		check, table, name, want string
	}{
		{"check_client_access", "regexp:{ {/^unknown$/ REJECT nameless} }", "", "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: nameless"},
		{"check_client_access", "regexp:{ {/^unknown$/ REJECT nameless} }", "mail.example.com", ""},
		{"check_client_access", "regexp:{ {!/^192\\./ DUNNO}, {/^192\\./ REJECT by address} }", "", ""},
		{"check_client_access", "inline:{ unknown=REJECT }", "", "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied"},
		{"check_reverse_client_hostname_access", "regexp:{ {/^unknown$/ REJECT no ptr} }", "", "554 5.7.1 <unknown[192.0.2.1]>: Unverified Client host rejected: no ptr"},
	} {
		e := engine(t, Options{
			MyNetworks:   []netip.Prefix{},
			RelayDomains: []string{"relay.example"},
			Tables:       SetTables{Set: &table.Set{}},
			Client:       []string{c.check + " " + c.table},
		})
		req := &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), ClientName: c.name, ReverseName: c.name,
			Sender: "a@x.example", Recipient: "r@relay.example"}
		d := e.Check(context.Background(), StageRcpt, req)
		got := ""
		if d.Refuses() {
			got = d.Reply()
		}
		if got != c.want {
			t.Errorf("%s %s, client name %q: %q; want %q", c.check, c.table, c.name, got, c.want)
		}
	}
}
