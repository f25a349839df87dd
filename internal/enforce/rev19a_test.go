package enforce

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestRev19aAlertsNotFloodedByForeignUpstreams: a client mails twenty
// domains of its own, each with a mail server of its own that answers in
// Gmail's words that the relay has no PTR record. With an alert per rule
// and host, the administrator got twenty alerts in the hour (and the
// limiter remembered every host for ever): whoever picks the recipients'
// mail servers chose how many. The upstreams that are not trusted share
// one alert per rule per hour; Gmail's own still gets through.
func TestRev19aAlertsNotFloodedByForeignUpstreams(t *testing.T) {
	var ml bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml)}
	const ptr = "550-5.7.25 [192.0.2.25] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. x1 - gsmtp"
	for i := range 20 {
		rf := Refusal{ID: fmt.Sprintf("Q%d", i), Client: netip.MustParseAddr("203.0.113.9"), From: "eve@attacker.example",
			To:       []string{fmt.Sprintf("x@d%d.attacker.example", i)},
			Upstream: Upstream{Reply: textReply(ptr), Host: fmt.Sprintf("mx.d%d.attacker.example[198.51.100.%d]:25", i, i+1), Stage: "data"}}
		if out := e.Act(context.Background(), rf); out.Plan.Verdict.Action != Alert {
			t.Fatalf("verdict %v; want alert", out.Plan.Verdict)
		}
	}
	gmail := Refusal{ID: "G1", Client: netip.MustParseAddr("203.0.113.10"), From: "bob@clean.example", To: []string{"y@gmail.com"},
		Upstream: Upstream{Reply: textReply(ptr), Host: "gmail-smtp-in.l.google.com[142.250.1.26]:25", Stage: "data"}}
	e.Act(context.Background(), gmail)
	if n := strings.Count(ml.String(), " admin-alert id=Q"); n != 1 {
		t.Errorf("%d admin alerts for twenty untrusted upstreams in an hour; want 1", n)
	}
	if n := strings.Count(ml.String(), " admin-alert id=G1 "); n != 1 {
		t.Errorf("%d admin alerts for Gmail's own refusal; want 1", n)
	}
}
