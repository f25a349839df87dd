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

// TestRep19DKIMReplayBlocksNoVictim: a client replays a newsletter that
// victim.example DKIM-signed, many times, from an envelope sender of its
// own. Gmail blames "your DKIM domain [victim.example 30]". Blocking
// victim.example at MAIL FROM would refuse victim.example's own senders
// and not this client: the refusal is reported. When the envelope sender
// is of the domain Gmail names (or under it), the domain is blocked.
func TestRep19DKIMReplayBlocksNoVictim(t *testing.T) {
	const dkim = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain [victim.example 30]. To protect our users from spam, mail sent from your DKIM domain has been temporarily rate limited. 421 4.7.28 x1 - gsmtp"
	p := Policy{Rules: DefaultRules()}
	client := netip.MustParseAddr("203.0.113.7")
	for _, tt := range []struct {
		from   string
		action Action
		domain string
	}{
		{"eve@replayer.example", Report, ""},
		{"eve@notvictim.example", Report, ""},
		{"news@victim.example", BlockDomain, "victim.example"},
		{"news@mail.victim.example", BlockDomain, "victim.example"},
	} {
		pl := Decide(p, Refusal{ID: "Q1", Client: client, From: tt.from, To: []string{"x@gmail.com"},
			Upstream: Upstream{Reply: textReply(dkim), Host: "gmail-smtp-in.l.google.com[142.250.1.26]:25", Stage: "data"}})
		if pl.Verdict.Action != BlockDomain || pl.Action != tt.action || pl.Domain != tt.domain {
			t.Errorf("from <%s>: %v %q (why %q, verdict %v); want %v %q", tt.from, pl.Action, pl.Domain, pl.Why, pl.Verdict.Action, tt.action, tt.domain)
		}
	}
}

// TestRep19IPRateAtMailBansNobody: Gmail answers a MAIL FROM with its
// "unusual rate of unsolicited mail originating from your IP address ...
// temporarily rate limited". No content was sent: the words are about the
// relay's address, not the message whose MAIL came next. Its client is
// not banned, and the 421 stays temporary (the message is retried, not
// bounced). The same reply at the final dot still bans.
func TestRep19IPRateAtMailBansNobody(t *testing.T) {
	const ipRate = "421-4.7.0 [192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. 421 4.7.0 x1 - gsmtp"
	var ml bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml)}
	for _, stage := range []string{"mail", "rcpt", "data"} {
		rf := Refusal{ID: "Q-" + stage, Client: netip.MustParseAddr("203.0.113.7"), From: "bob@clean.example", To: []string{"x@gmail.com"},
			Upstream: Upstream{Reply: textReply(ipRate), Host: "gmail-smtp-in.l.google.com[142.250.1.26]:25", Stage: stage}}
		out := e.Act(context.Background(), rf)
		if stage == "data" {
			if out.Plan.Action != Ban {
				t.Errorf("at the final dot: %v (%s); want ban", out.Plan.Action, out.Plan.Why)
			}
			continue
		}
		if out.Plan.Action != None || out.Banned || out.Heard.Code != 421 || out.Settle != "" {
			t.Errorf("at %s: action %v (%s), banned %v, heard %q, settle %q; want none, not banned, the 421 as it is, kept",
				stage, out.Plan.Action, out.Plan.Why, out.Banned, out.Heard.String(), out.Settle)
		}
	}
}
