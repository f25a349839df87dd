package policy

import (
	"context"
	"testing"
)

// TestPF25RoutedRecipientNestedPermit: Postfix's check_mail_access turns
// any OK that a recipient table lookup comes to into DUNNO for a routed
// recipient (the percent hack, a bang path, a quoted @): the SUSPICIOUS
// test looks at the lookup's status, so a result that is a restriction
// ("permit") or a restriction class that permits is caught as an OK is.
// Checked against Postfix 3.7: with relay restrictions
// "check_recipient_access pcre:..., reject_unauth_destination" and the
// rules below, every routed recipient hears "554 5.7.1 ...: Relay access
// denied". The relay let them through, relaying victim%elsewhere.example
// to relay.example's host, where the percent hack may send it on.
func TestPF25RoutedRecipientNestedPermit(t *testing.T) {
	for _, result := range []string{"permit", "trusted", "permit_mynetworks, permit", "OK"} {
		e := engine(t, Options{
			Relay:              []string{"check_recipient_access", "hash:/etc/postfix/relay_recipients", "reject_unauth_destination"},
			RestrictionClasses: map[string][]string{"trusted": {"permit"}},
			Tables:             oneTable{mapTable{"relay.example": result}},
		})
		for _, rcpt := range []string{
			"victim%elsewhere.example@relay.example",
			`"victim@elsewhere.example"@relay.example`,
			"elsewhere.example!victim@relay.example",
		} {
			d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
			if want := "554 5.7.1 <" + rcpt + ">: Relay access denied"; d.Reply() != want {
				t.Errorf("result %q, routed recipient %q: %v %q; want %q", result, rcpt, d.Verdict, d.Reply(), want)
			}
		}
		if d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: "user@relay.example"}); d.Verdict != Permit {
			t.Errorf("result %q, user@relay.example: %v %q; want permit (the table's)", result, d.Verdict, d.Reply())
		}
	}
}
