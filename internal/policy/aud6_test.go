package policy

import (
	"context"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// deadlineVerifier records the deadline of the context it is asked with.
type deadlineVerifier struct {
	deadline time.Time
	has      bool
}

func (d *deadlineVerifier) Verify(ctx context.Context, req verify.Request) verify.Result {
	d.deadline, d.has = ctx.Deadline()
	return verify.Result{Kind: verify.Remote, Address: req.Recipient}
}

// TestAud6VerifierTimeoutIsTheVerifiers: the address verifier's time
// limit is policy.verifier_timeout (or E-MailRelay's --filter-timeout),
// which the verifier applies itself. The policy's adapter added a hidden
// limit of two minutes, so "verifier_timeout = 5m" or "--filter-timeout
// 300" still cut a slow verifier off after 120 s, with 450 for the
// recipient. The adapter adds no deadline of its own now.
func TestAud6VerifierTimeoutIsTheVerifiers(t *testing.T) {
	d := &deadlineVerifier{}
	dec := AddressVerifier{V: d, Domain: "relay.example"}.Verify(context.Background(),
		&Request{Recipient: "bob@example.net", Sender: "alice@example.org", ClientAddr: "192.0.2.1:2525"})
	if dec.Address != "bob@example.net" {
		t.Errorf("decision %+v; want the remote address", dec)
	}
	if d.has {
		t.Errorf("the verifier was asked with a deadline %v from now; want none but its own timeout",
			time.Until(d.deadline).Round(time.Second))
	}
}
