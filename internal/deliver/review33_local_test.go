package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// nxRouter fails every destination as route.Dialer.Dial does for a domain
// that does not exist (route/dial.go, TestDNSFailureLocal there): the
// relay's own DNS finding.
type nxRouter struct{}

func (nxRouter) Route(_, rcpt string) route.Destination {
	return route.Destination{Key: "smtp/" + rcpt[strings.IndexByte(rcpt, '@')+1:]}
}
func (nxRouter) Dial(context.Context, route.Destination) (*remote.Conn, string, error) {
	return nil, "typo.example", &remote.Error{Stage: "dns", Perm: true,
		Reply: reply.Reply{Code: 550, Enhanced: "5.1.2", Lines: []string{"5.1.2 typo.example: domain does not exist"}, Local: true}}
}

func TestReview33DNSFailureIsLocal(t *testing.T) {
	sp, s, _, id := setup(t, "127.0.0.1:1", "bob@typo.example")
	s.opts.Router = nxRouter{}
	refusals := &countRefusals{}
	s.opts.Refusals = refusals
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, _, err := sp.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	r := env.Recipients[0]
	t.Logf("%s %q", r.Status, r.Reply)
	if refusals.n != 0 {
		t.Errorf("the enforcer heard of the relay's own DNS finding %d time(s) as an upstream refusal", refusals.n)
	}
	if r.Status == spool.Bounced && !strings.HasPrefix(r.Reply, "5.1.2 ") {
		t.Errorf("stored %q: a notice says 'host typo.example said: 550 ...'", r.Reply)
	}
}
