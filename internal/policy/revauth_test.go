package policy

import (
	"context"
	"net/netip"
	"testing"
)

// TestRevAuthSenderLoginCase: docs/auth.md says sender_login_maps keys and
// logins are compared without regard to case, as Postfix compares the SASL
// login with strcasecmp. A map written "alice@example.com Alice" refused
// the login "alice" with "553 ... not owned by user alice".
func TestRevAuthSenderLoginCase(t *testing.T) {
	e := engine(t, Options{SenderOwners: owners{"alice@example.com": {"Alice"}}, RejectSenderLoginMismatch: true})
	for _, auth := range []string{"alice", "ALICE", "Alice"} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), AuthID: auth,
			Sender: "alice@example.com", Recipient: "x@y.example"})
		if d.Verdict != Permit {
			t.Errorf("login %q, map login \"Alice\": %v %s; want permit", auth, d.Verdict, d.Reply())
		}
	}
}
