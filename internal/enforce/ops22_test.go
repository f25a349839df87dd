package enforce

import (
	"context"
	"net/netip"
	"testing"
)

// verdictCount records the verdicts counted, as the metrics would.
type verdictCount map[string]int

func (v verdictCount) Verdict(code int, verdict string) { v[verdict]++ }

// TestOps22OneVerdictPerMessageRefusal: a reply to the message as a whole
// (at its final dot, to DATA or MAIL) is one refusal, counted once in
// relaykeeper_upstream_verdicts_total however many recipients it refused;
// replies to RCPT count one each. The scheduler hands the enforcer each
// recipient in turn, and Gmail's spam reply to one message of 6 Gmail
// recipients counted 6 ban verdicts, so that the shipped alert
// RelaykeeperSpamVerdicts ("more than 5 messages called spam in an hour")
// fired for a single message.
func TestOps22OneVerdictPerMessageRefusal(t *testing.T) {
	counted := verdictCount{}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Metrics: counted}
	act := func(id, rcpt, stage, text string) {
		u := upstream(text)
		u.Stage = stage
		e.Act(context.Background(), Refusal{ID: id, Client: netip.MustParseAddr("203.0.113.9"), From: "a@example.org",
			To: []string{rcpt}, Upstream: u})
	}
	for _, rcpt := range []string{"a@gmail.test", "b@gmail.test", "c@gmail.test"} {
		act("Q1", rcpt, "data", "552 5.3.4 Message too big for system. x1 - gsmtp")
	}
	if counted["none"] != 1 {
		t.Errorf("one final-dot refusal of 3 recipients counted %d verdicts; want 1", counted["none"])
	}
	act("Q2", "a@gmail.test", "data", "552 5.3.4 Message too big for system. x2 - gsmtp")
	if counted["none"] != 2 {
		t.Errorf("another message's refusal: %d verdicts in all; want 2", counted["none"])
	}
	for _, rcpt := range []string{"x@gmail.test", "y@gmail.test"} {
		act("Q3", rcpt, "rcpt", "550 5.1.1 The email account that you tried to reach does not exist. x3 - gsmtp")
	}
	if counted["none"] != 4 {
		t.Errorf("two refusals at RCPT: %d verdicts in all; want 4", counted["none"])
	}
}
