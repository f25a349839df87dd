package policy

import (
	"context"
	"net/netip"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRevPol2LoginMismatchCase: Postfix compares the login with the
// sender's owners without regard to case (strcasecmp_utf8), so a client
// that logged in as "Alice" owns what sender_login_maps gives "alice";
// every form of the check agrees.
func TestRevPol2LoginMismatchCase(t *testing.T) {
	own := owners{"alice@x.example": {"alice"}, "jorg@x.example": {"jörg"}}
	for _, rule := range []string{"reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch", "reject_known_sender_login_mismatch"} {
		e := engine(t, Options{SenderOwners: own, Sender: []string{rule}})
		for _, tc := range []struct{ auth, sender string }{{"Alice", "alice@x.example"}, {"JÖRG", "jorg@x.example"}} {
			d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), AuthID: tc.auth, Sender: tc.sender, Recipient: "r@y.example"})
			if d.Refuses() {
				t.Errorf("%s, login %q, sender %s: %q", rule, tc.auth, tc.sender, d.Reply())
			}
		}
	}
}

// TestRevPol2DataWithoutRecipient: at DATA with more than one recipient
// Postfix gives the data restrictions no recipient, and every recipient
// restriction then has nothing to say (generic_checks: "if
// (state->recipient)"). None of them may refuse the DATA.
func TestRevPol2DataWithoutRecipient(t *testing.T) {
	for _, item := range []string{"reject_unauth_destination", "permit_auth_destination", "reject_non_fqdn_recipient",
		"reject_unknown_recipient_domain", "check_recipient_access inline:{ <>=REJECT }", "reject_rhsbl_recipient dbl.test"} {
		var asked []string
		e := engine(t, Options{
			MyNetworks:   []netip.Prefix{},
			RelayDomains: []string{"relay.example"},
			MailDomains:  noDomains{},
			DNSLists:     fakeLists{asked: &asked},
			Tables:       SetTables{Set: &table.Set{}},
			Data:         []string{item},
		})
		d := e.Check(context.Background(), StageData, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "a@x.example", RecipientCount: 2})
		if d.Refuses() {
			t.Errorf("data_restrictions = [%q], two recipients: %q", item, d.Reply())
		}
	}
}
