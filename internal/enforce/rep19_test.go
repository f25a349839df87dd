package enforce

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestRep19AlertNotMaskedByForeignUpstream: a client that may relay mails
// its own domain, whose mail server answers in Gmail's words that the
// relay has no PTR record. That alert is told once; it must not use up
// the hour's alert for the cause, so that Gmail's own PTR refusal a
// minute later still reaches the administrator and the mail log.
func TestRep19AlertNotMaskedByForeignUpstream(t *testing.T) {
	var ml bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml)}
	const ptr = "550-5.7.25 [192.0.2.25] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. x1 - gsmtp"
	attacker := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "eve@attacker.example", To: []string{"x@attacker.example"},
		Upstream: Upstream{Reply: textReply(ptr), Host: "mx.attacker.example[198.51.100.7]:25", Stage: "data"}}
	gmail := Refusal{ID: "Q2", Client: netip.MustParseAddr("203.0.113.10"), From: "bob@clean.example", To: []string{"y@gmail.com"},
		Upstream: Upstream{Reply: textReply(strings.Replace(ptr, "x1", "x2", 1)), Host: "gmail-smtp-in.l.google.com[142.250.1.26]:25", Stage: "data"}}
	for _, rf := range []Refusal{attacker, gmail, gmail} {
		if out := e.Act(context.Background(), rf); out.Plan.Verdict.Action != Alert {
			t.Fatalf("verdict %v; want alert", out.Plan.Verdict)
		}
	}
	if n := strings.Count(ml.String(), " admin-alert id=Q2 "); n != 1 {
		t.Errorf("%d admin-alert lines for Gmail's refusal; want 1 (a foreign upstream's alert must not mask it):\n%s", n, ml.String())
	}
}
