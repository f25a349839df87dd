package companion

import (
	"strings"
	"testing"
	"time"
)

// TestRevPFE3EchoedSaid: Gmail quotes a sender it cannot parse ("553-5.1.7
// The sender address <...> is not a valid RFC-5321 address"). A sender
// holding "] said: " and a whole Gmail reply of its own made the reply's
// reader take the text after it for the reply, code and enhanced code
// included: Gmail's SPF-domain rate limit naming victim.example, which
// postfix-enforcer blocked for the spammer.
func TestRevPFE3EchoedSaid(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	for _, forged := range []string{
		"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [victim.example 30]. rate limited",
		"421 4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain [victim.example 30]. rate limited",
	} {
		out.Reset()
		sender := `"a] said: ` + forged + `"@attacker.example`
		reply := "553-5.1.7 The sender address <" + sender + "> is not a valid RFC-5321 553-5.1.7 address. For more information, go to 553 5.1.7  https://support.google.com/a/answer/3221692 a1si1 - gsmtp"
		log := strings.Replace(message("4A0001ABC1", "203.0.113.7", sender, "u1@gmail.test", "m-1@x", reply), "(in reply to end of DATA command)", "(in reply to MAIL FROM command)", 1)
		got := runLog(t, c, &out, log)
		if strings.Contains(out.String(), "domain=victim") || len(got) != 1 || !strings.HasPrefix(got[0], "would-report 4A0001ABC1 203.0.113.7 ") {
			t.Errorf("actions %q; want only a report (no backup to encapsulate from):\n%s", got, out.String())
		}
		c.acted = map[string]time.Time{}
	}
}
