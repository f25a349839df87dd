package deliver

import (
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// StockVerdicts reads Gmail's pace and alert replies (the texts of its
// "SMTP errors and codes" page, both wordings). It stands in until the
// enforcement engine's plan carries the pace and alert verdicts; then the
// engine is passed as Options.Verdicts and this goes.
type StockVerdicts struct{}

// Verdict implements Verdicts.
func (StockVerdicts) Verdict(r Result) Verdict {
	rep := r.Reply
	if rep.Code < 400 {
		return VerdictNone
	}
	// The lines joined as one text, without the enhanced code each line
	// repeats, so that a phrase broken across lines still matches.
	lines := make([]string, len(rep.Lines))
	for i, l := range rep.Lines {
		if rep.Enhanced != "" {
			l = strings.TrimPrefix(l, rep.Enhanced+" ")
		}
		lines[i] = l
	}
	text := strings.ToLower(strings.Join(lines, " "))
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(text, s) {
				return true
			}
		}
		return false
	}
	switch {
	case r.Stage == "auth":
		// The relay's own login at the smarthost was refused.
		return VerdictAlert
	case has("daily user sending limit exceeded", "daily smtp relay limit exceeded"):
		return VerdictQuota
	case has("receiving mail at a rate", "receiving mail too quickly"):
		return VerdictPaceRecipient
	case has("unusual rate of unsolicited"):
		// Spam from some client: the enforcer's business, not pacing.
		return VerdictNone
	case has("unusual rate of email originating from your ip", "unusual rate of mail originating from your ip",
		"try again later, closing connection", "server busy, try again later"):
		return VerdictPace
	case has("not using a tls connection", "wasn't sent over a tls connection", "does not have a ptr record",
		"peak smtp relay limit exceeded"):
		return VerdictAlert
	}
	return VerdictNone
}

// EngineVerdicts gives the scheduler the enforcement engine's pace and
// alert verdicts (enforce.Decide's plan: its action and scope), so that
// the queue and the enforcer read a reply the same way. A refused login at
// the smarthost is an alert whatever its text. A refusal the rules would
// sanction a client for, given before the transaction (Gmail's "unusual
// rate of unsolicited mail originating from your IP address ... rate
// limited" at the greeting), sanctions nobody (enforce.Decide) and paces
// the destination: it is about the relay's address, and every queued
// message opening a session of its own would keep that address limited.
type EngineVerdicts struct{ Policy enforce.Policy }

// Verdict implements Verdicts.
func (ev EngineVerdicts) Verdict(res Result) Verdict {
	if res.Stage == "auth" {
		return VerdictAlert
	}
	switch v := ev.classify(res); {
	case enforce.BeforeTransaction(res.Stage) && (v.Action == enforce.Ban || v.Action == enforce.BlockDomain || v.Action == enforce.Encapsulate):
		return VerdictPace
	case enforce.BeforeContent(res.Stage) && v.Action == enforce.Ban:
		// Gmail's "unusual rate of unsolicited mail originating from
		// your IP address" before any content (MAIL, RCPT, DATA): about the relay's
		// address (enforce.Decide bans nobody for it); slow down.
		return VerdictPace
	case v.Action == enforce.Pace && v.Scope == enforce.ScopeRecipient:
		return VerdictPaceRecipient
	case v.Action == enforce.Pace:
		return VerdictPace
	case v.Action == enforce.Alert && v.Scope == enforce.ScopeAccount:
		return VerdictQuota
	case v.Action == enforce.Alert:
		return VerdictAlert
	}
	return VerdictNone
}

// AboutMessage implements MessageVerdicts: the engine bans the client,
// blocks the sender's domain or encapsulates the message for the reply.
func (ev EngineVerdicts) AboutMessage(res Result) bool {
	switch ev.classify(res).Action {
	case enforce.Ban, enforce.BlockDomain, enforce.Encapsulate:
		return true
	}
	return false
}

func (ev EngineVerdicts) classify(res Result) enforce.Verdict {
	return enforce.Decide(ev.Policy, enforce.Refusal{To: []string{res.Rcpt.Addr},
		Upstream: enforce.Upstream{Reply: res.Reply}}).Verdict
}

// MessageVerdicts is a Verdicts that also tells a refusal about the
// message itself, its client or its sender, that the enforcer acts on
// (Gmail's "unusual rate of unsolicited mail", a DMARC refusal): another
// MX host of the destination would say the same, and the enforcer must
// hear it, so such a reply is not taken to the next MX host (nextMX).
type MessageVerdicts interface {
	AboutMessage(r Result) bool
}
