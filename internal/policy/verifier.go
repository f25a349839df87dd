package policy

import (
	"context"

	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// RecipientVerifier answers for one recipient; *verify.Verifier is one.
type RecipientVerifier interface {
	Verify(ctx context.Context, req verify.Request) verify.Result
}

// AddressVerifier is E-MailRelay's address verifier as a Verifier: its
// answer becomes the recipient's decision.
type AddressVerifier struct {
	V RecipientVerifier
	// Domain is this relay's, passed to the verifier.
	Domain string
}

// Verify asks the verifier about req's recipient. The verifier's own
// timeout (policy.verifier_timeout, or --filter-timeout) bounds the
// question; ctx, the session's, ends it early.
func (v AddressVerifier) Verify(ctx context.Context, req *Request) Decision {
	mech := req.AuthMech
	if mech == "" {
		mech = "none"
	}
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
