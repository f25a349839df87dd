package policy

import (
	"context"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// AddressVerifier is E-MailRelay's address verifier as a Verifier: its
// answer becomes the recipient's decision.
type AddressVerifier struct {
	V *verify.Verifier
	// Domain is this relay's, passed to the verifier.
	Domain string
}

// Verify asks the verifier about req's recipient, for two minutes at most.
func (v AddressVerifier) Verify(ctx context.Context, req *Request) Decision {
	mech := req.AuthMech
	if mech == "" {
		mech = "none"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r := v.V.Verify(ctx, verify.Request{Recipient: req.Recipient, Sender: req.Sender, ClientAddr: req.ClientAddr,
		Domain: v.Domain, AuthMechanism: mech, AuthID: req.AuthID})
	const rule = "address_verifier"
	switch r.Kind {
	case verify.Local:
		return Decision{Mailbox: r.Mailbox, Rule: rule}
	case verify.Remote:
		return Decision{Address: r.Address, Rule: rule}
	case verify.Reject:
		return Decision{Verdict: Reject, Code: r.Code, Enhanced: r.EnhancedCode, Text: r.Text, Rule: rule}
	case verify.Drop:
		return Decision{Verdict: Drop, Rule: rule}
	}
	return Decision{Verdict: Defer, Code: r.Code, Enhanced: r.EnhancedCode, Text: r.Text, Rule: rule}
}
