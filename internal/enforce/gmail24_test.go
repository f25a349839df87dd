package enforce

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// TestGmail24CensoredTrailingWhitespace: a reply line that ends in a tab
// reaches the rules with a '?' there (the relay's client censors it as
// Postfix's smtp client does). Where Gmail broke its phrase at that line
// ("... unsolicited mail\t" / "421-4.7.0 originating from your IP
// address"), the '?' split the phrase and the reply was only reported:
// the spammer went unbanned, the SPF domain unblocked, the DMARC refusal
// bounced instead of encapsulated. Both the relay's reply and Postfix's
// log line of it classify as without the tab.
func TestGmail24CensoredTrailingWhitespace(t *testing.T) {
	cases := []struct {
		lines  []string
		action Action
		rule   string
	}{
		{[]string{
			"421-4.7.0 [192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail  \t",
			"421-4.7.0 originating from your IP address. To protect our users from spam, mail sent  \t",
			"421 4.7.0 from your IP address has been temporarily rate limited. x1 - gsmtp  \t",
		}, Ban, "gmail-ip-rate"},
		{[]string{
			"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from\t",
			"421-4.7.28 your SPF domain [g24.example 30]. To protect our users from spam, mail\t\t",
			"421 4.7.28 sent from your SPF domain has been temporarily rate limited. x2 - gsmtp",
		}, BlockDomain, "gmail-spf-domain-rate"},
		{[]string{
			"421-4.7.40 Your email has been rate limited because the sending domain doesn't have a \t",
			"421-4.7.40 DMARC record, or the DMARC record doesn't specify a DMARC policy. x3 - gsmtp",
			"421 4.7.40 gsmtp",
		}, Encapsulate, "gmail-no-dmarc-record"},
	}
	rules := DefaultRules()
	for _, c := range cases {
		r, err := reply.Parse(c.lines)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.String(), "?") {
			t.Fatalf("reply %q: the tab was not censored; the test means nothing", r.String())
		}
		if v := rules.Classify(Upstream{Reply: r, Host: "gmail-smtp-in.l.google.com"}); v.Action != c.action || v.Rule != c.rule {
			t.Errorf("relay: %q: %v; want %s (rule %s)", r.String(), v, c.action, c.rule)
		}
		logged := "host gmail-smtp-in.l.google.com[142.250.102.27] said: " + r.String() + " (in reply to end of DATA command)"
		u, err := ParseReply(logged)
		if err != nil {
			t.Fatal(err)
		}
		if v := rules.Classify(u); v.Action != c.action || v.Rule != c.rule {
			t.Errorf("Postfix log: %q: %v; want %s (rule %s)", logged, v, c.action, c.rule)
		}
	}
	// A '?' inside a word is text, and stays.
	if got := Normalize("550-5.7.1 go to ?p=x? 550 5.7.1 ? a?b ??"); got != "550-5.7.1 go to ?p=x a?b" {
		t.Errorf("Normalize: %q", got)
	}
}
