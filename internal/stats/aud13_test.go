package stats

import (
	"strings"
	"testing"
)

// TestAud13ProxyUpstreamRefusalRate: relaykeeper stats counts a proxy's
// relayed upstream refusal at RCPT (a reject line naming the relay) in the
// rejection rates, as the live metrics do; the relay's own refusal (no
// relay=) stays out. It was left out, so a proxy whose upstream refused
// recipients showed no refusals at all.
func TestAud13ProxyUpstreamRefusalRate(t *testing.T) {
	log := strings.Join([]string{
		`2026-12-06T10:00:00.000Z reject client=192.0.2.5:4000 stage=rcpt reply="550 5.1.1 <gone@example.net>: no such user" from=<a@example.org> to=<gone@example.net> relay=smarthost:25`,
		`2026-12-06T10:00:01.000Z reject client=192.0.2.5:4000 stage=rcpt reply="554 5.7.1 <c@example.com>: Relay access denied" from=<a@example.org> to=<c@example.com>`,
		`2026-12-06T10:00:02.000Z proxy id=6B0000000000000A client=192.0.2.5:4000 from=<a@example.org> nrcpt=1 size=100 relay=smarthost:25 result=sent reply="250 2.0.0 Ok"`,
	}, "\n") + "\n"
	rep, err := Aggregate(strings.NewReader(log), 10)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, cr := range rep.RejectionRates {
		if cr.Client == "192.0.2.5" {
			found = true
			if cr.Replies != 2 || cr.Refused != 1 {
				t.Errorf("rate of 192.0.2.5 = %d refused of %d replies; want 1 of 2", cr.Refused, cr.Replies)
			}
		}
	}
	if !found {
		t.Errorf("no rejection rate for 192.0.2.5: %+v", rep.RejectionRates)
	}
	if rep.Rejected.Total != 2 {
		t.Errorf("rejected = %d; want 2 (both refusals are still rejects)", rep.Rejected.Total)
	}
}
