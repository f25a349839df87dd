package deliver

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/route"
)

// TestRev28ProxyQuotaKeepsOtherAccounts: the proxy's upstream said its
// account's daily quota is used up, and the proxy pauses for the quota
// window (24h). The scheduler's sessions to the same upstream under the
// same account wait too; but one logged in with another account (a
// client account selector, a sender's own login) has a quota of its own,
// and was held for a day by the proxy's. A rate pause ("try again
// later": the relay's address) still holds every account.
func TestRev28ProxyQuotaKeepsOtherAccounts(t *testing.T) {
	up := startUpstream(t)
	_, s, _, _ := setup(t, up.addr, "report@example.net")
	s.opts.Verdicts = EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}}
	same := route.Destination{Key: s.opts.Upstream, Upstream: s.opts.Upstream}
	other := same.WithAccount("other-account")

	pp := s.ProxyPace()
	q, err := enforce.ParseReply("550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852 x1 - gsmtp")
	if err != nil {
		t.Fatal(err)
	}
	if !pp.Signal("mail", q.Reply) {
		t.Fatal("the proxy did not pause for its quota")
	}
	if _, ok := s.destPaused(same); !ok {
		t.Errorf("the proxy's account's quota: a session under the same account is not paused; want paused")
	}
	if until, ok := s.destPaused(other); ok {
		t.Errorf("the proxy's account's quota: a session under another account is paused until %v; want not paused", until)
	}

	r, err := enforce.ParseReply("421 4.7.0 Try again later, closing connection. x2 - gsmtp")
	if err != nil {
		t.Fatal(err)
	}
	if !pp.Signal("greeting", r.Reply) {
		t.Fatal("the proxy did not pause for 421 try again later")
	}
	if _, ok := s.destPaused(other); !ok {
		t.Errorf("a rate pause: a session under another account is not paused; want paused (the relay's address is paced)")
	}
	if _, ok := s.destPaused(same); !ok {
		t.Errorf("a rate pause: a session under the same account is not paused; want paused")
	}
}
