package deliver

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// TestGm11PeakRelayLimitIsNoQuota: Workspace's SMTP relay answers "450
// 4.2.1 Peak SMTP relay limit exceeded for this customer" for a burst, a
// temporary rate limit. The built-in rules gave it the daily limit's
// scope (account): everything for that destination then waited
// quota_window, 24 hours, where docs/queue.md and the rules' own
// documentation keep that wait for the 5.4.5 daily limits, and
// StockVerdicts (the queue's reading without the engine) called it an
// alert. The engine's reading and the stock one agree on Gmail's limits
// now: the daily limits wait the quota window, the peak limit is an
// alert and is retried as any deferral.
func TestGm11PeakRelayLimitIsNoQuota(t *testing.T) {
	ev := EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}}
	for _, c := range []struct {
		code int
		text string
		want Verdict
	}{
		{450, "4.2.1 Peak SMTP relay limit exceeded for this customer. For more information on SMTP relay sending limits please contact your administrator.", VerdictAlert},
		{550, "5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852", VerdictQuota},
		{550, "5.4.5 Daily SMTP relay limit exceeded for user. For more information on SMTP relay sending limits please contact your administrator.", VerdictQuota},
	} {
		r := Result{Reply: reply.Reply{Code: c.code, Enhanced: c.text[:5], Lines: []string{c.text}}, Stage: "rcpt"}
		if got := ev.Verdict(r); got != c.want {
			t.Errorf("engine: Verdict(%d %s) = %v; want %v", c.code, c.text, got, c.want)
		}
		if got := (StockVerdicts{}).Verdict(r); got != c.want {
			t.Errorf("stock: Verdict(%d %s) = %v; want %v", c.code, c.text, got, c.want)
		}
	}
}
