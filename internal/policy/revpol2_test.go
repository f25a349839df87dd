package policy

import (
	"context"
	"net/netip"
	"testing"
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
