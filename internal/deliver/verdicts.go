package deliver

import "strings"

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
		"peak smtp relay limit exceeded", "try again later, closing connection", "server busy, try again later"):
		return VerdictPace
	case has("not using a tls connection", "wasn't sent over a tls connection", "does not have a ptr record"):
		return VerdictAlert
	}
	return VerdictNone
}
