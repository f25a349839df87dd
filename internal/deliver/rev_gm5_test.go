package deliver

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRevGM5EngineVerdictsBeforeTransaction: a refusal the rules ban or
// block for, given at the greeting or EHLO, paces the destination; the
// same reply in the transaction is the enforcer's (VerdictNone here), and
// a pace reply paces at any stage.
func TestRevGM5EngineVerdictsBeforeTransaction(t *testing.T) {
	ev := EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}}
	const ipRate = "421-4.7.0 [192.0.2.25 15] Our system has detected an unusual rate of 421-4.7.0 unsolicited mail originating from your IP address. To protect our 421 4.7.0 users from spam, mail sent from your IP address has been temporarily rate limited. g1 - gsmtp"
	const domain = "550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely 550 5.7.1 suspicious due to the very low reputation of the sending domain. g2 - gsmtp"
	const rate = "421-4.7.28 Gmail has detected an unusual rate of email originating from your IP address 421 4.7.28 192.0.2.25. temporarily rate limited. g3 - gsmtp"
	for _, c := range []struct {
		reply, stage string
		want         Verdict
	}{
		{ipRate, "greeting", VerdictPace},
		{ipRate, "ehlo", VerdictPace},
		{domain, "helo", VerdictPace},
		{ipRate, "data", VerdictNone},
		// Before the content, a ban's words are about the relay's
		// address (rep19): pace; a domain's are the sender's.
		{ipRate, "rcpt", VerdictPace},
		{ipRate, "mail", VerdictPace},
		{domain, "mail", VerdictNone},
		{rate, "greeting", VerdictPace},
		{rate, "data", VerdictPace},
	} {
		u, err := enforce.ParseReply(c.reply)
		if err != nil {
			t.Fatal(err)
		}
		res := Result{Env: &spool.Envelope{}, Rcpt: spool.Recipient{Addr: "u@gmail.test"}, Reply: u.Reply, Stage: c.stage}
		if got := ev.Verdict(res); got != c.want {
			t.Errorf("Verdict(%.40s..., stage %s) = %v; want %v", c.reply, c.stage, got, c.want)
		}
	}
}
