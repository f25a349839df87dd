package companion

import (
	"fmt"
	"strings"
	"testing"
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
		c.acted = actedSet{}
	}
}

// TestRevPFE3RetryFromAnotherAddress: Gmail's text names the relay's own
// address ("SPF [example.com] with ip: [192.0.2.25]", "[192.0.2.25 15]"),
// and a dual-stack relay (or one with several addresses) retries a
// deferred message from another one. Each retry's deferral was a new
// refusal, so its action was taken again: one more encapsulated copy
// (or report, or ban line) per retry. The relay's address is not part of
// what makes a refusal the same.
func TestRevPFE3RetryFromAnotherAddress(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	const unauth = "421-4.7.26 This email has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. 421-4.7.26 Authentication results: DKIM = did not pass SPF [one.example] with ip: [%s] = did not pass 421 4.7.26 %s - gsmtp"
	const ipRep = "421-4.7.0 [%s 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 %s - gsmtp"
	var log strings.Builder
	log.WriteString(message("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@gmail.test", "m-1@x", fmt.Sprintf(unauth, "192.0.2.25", "s1")))
	log.WriteString(message("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@gmail.test", "m-2@x", fmt.Sprintf(ipRep, "192.0.2.25", "s2")))
	for i, ip := range []string{"2001:db8::25", "192.0.2.26", "2001:db8::25"} {
		for _, m := range []string{
			message("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@gmail.test", "m-1@x", fmt.Sprintf(unauth, ip, fmt.Sprint("r1-", i))),
			message("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@gmail.test", "m-2@x", fmt.Sprintf(ipRep, ip, fmt.Sprint("r2-", i))),
		} {
			// A retry: qmgr's line and the delivery's again.
			lines := strings.Split(strings.TrimSpace(m), "\n")
			log.WriteString(strings.Join(lines[2:], "\n") + "\n")
		}
	}
	revEnf2Actions(t, c, &out, strings.ReplaceAll(log.String(), "status=bounced", "status=deferred"),
		"would-report 4A0001ABC1 203.0.113.1 no backup mailbox (-f) to take the message from",
		"would-ban 4A0002ABC2 203.0.113.2 ",
	)
}
