package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestAud4LifetimeZeroTriesOnce: Postfix's maximal_queue_lifetime = 0 and
// bounce_queue_lifetime = 0 (a common setting against backscatter) mean
// "try delivery only once". relaykeeper refused 0 at start ("is not
// positive"), and a lifetime of 0 in the scheduler meant "never expire".
// With Lifetime(0), the first deferral fails the recipient, with a notice.
func TestAud4LifetimeZeroTriesOnce(t *testing.T) {
	up := startUpstream(t)
	up.set("slow@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	sp, s, _, id := setup(t, up.addr, "slow@example.net")
	ns := &notices{}
	s.opts.Notices = ns
	s.opts.MaxLifetime = Lifetime(0)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, st, err := sp.Read(id)
	if err != nil || st != spool.Failed {
		t.Fatalf("state after one deferral = %v, %v; want failed (tried only once)", st, err)
	}
	if r := env.Recipients[0].Reply; !strings.Contains(r, "expired") || !strings.Contains(r, "451") {
		t.Errorf("reply %q; want the expiry with the last reply", r)
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if len(ns.got) != 1 || ns.got[0].kind != bounce.Failure {
		t.Errorf("notices = %+v; want one failure notice", ns.got)
	}
}
