package enforce

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRep20ReportNotMaskedByForeignUpstream: a client that may relay mails
// its own domain, whose server answers with a refusal no rule knows, once
// an hour. That report must not use up the hour's report to the
// administrator: Gmail's own unknown refusal a minute later (a new
// wording to write a rule for) still reaches the administrator. Nor may
// twenty such servers send twenty reports (TestAdminReportsLimitedByRule).
func TestRep20ReportNotMaskedByForeignUpstream(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Now: newFakeClock().Now,
		RelayAddress: "postmaster@relay.example", Admin: "admin@relay.example", MailLog: maillog.New(nil)}
	for i := range 20 {
		u := upstream("550 5.7.0 go away, no rule knows me")
		u.Host = fmt.Sprintf("mx%d.attacker.example[198.51.100.%d]:25", i, i)
		e.Act(context.Background(), Refusal{ID: fmt.Sprintf("Q%d", i), Client: netip.MustParseAddr("203.0.113.9"),
			From: "eve@attacker.example", To: []string{"x@attacker.example"}, Upstream: u})
	}
	u := upstream("550-5.7.0 A refusal Gmail has never given before. 550 5.7.0 x1 - gsmtp")
	u.Host = "gmail-smtp-in.l.google.com[142.250.1.26]:25"
	e.Act(context.Background(), Refusal{ID: "G1", Client: netip.MustParseAddr("203.0.113.10"),
		From: "bob@clean.example", To: []string{"y@gmail.com"}, Upstream: u})
	if ents, _ := sp.List(); len(ents) != 2 {
		t.Errorf("%d reports queued for 20 unknown refusals of untrusted hosts and one of Gmail's; want 2 (one each)", len(ents))
	}
}
