package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestAud13RuleSeriesFromStart: every counter series the shipped alert
// rules take increase() or rate() of, with the label values they select,
// exists at 0 as soon as the relay starts. Prometheus sees no increase in
// a series that first appears at 1: with relaykeeper_upstream_replies_total
// {class="5xx"} missing until the first refusal, the upstream rejection
// rate rule, the one meant to warn before Gmail blocks the relay, never
// counted the first refusal of each class (3 refusals in 100 replies
// read as 2%, under its 2% line). Histograms are left out: their series
// come with the spool's first fsync, at start.
func TestAud13RuleSeriesFromStart(t *testing.T) {
	b, err := os.ReadFile("../../etc/prometheus/relaykeeper-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	fams, err := New(Options{}).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{} // "name" and "name label=value"
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			have[f.GetName()] = true
			for _, l := range s.GetLabel() {
				have[f.GetName()+" "+l.GetName()+"="+l.GetValue()] = true
			}
		}
	}
	call := regexp.MustCompile(`(?:increase|rate)\((relaykeeper_[a-z_]+)(?:\{([^}]*)\})?\[`)
	matcher := regexp.MustCompile(`(\w+)=~?"([^"]*)"`)
	calls := call.FindAllStringSubmatch(string(b), -1)
	if len(calls) < 4 {
		t.Fatalf("found %d increase()/rate() calls in the alert rules; want at least 4", len(calls))
	}
	for _, c := range calls {
		name := c[1]
		if strings.HasSuffix(name, "_bucket") {
			continue
		}
		if !have[name] {
			t.Errorf("the rules take %s...] of %s, which has no series at start", c[0], name)
			continue
		}
		for _, m := range matcher.FindAllStringSubmatch(c[2], -1) {
			for v := range strings.SplitSeq(m[2], "|") {
				if !have[name+" "+m[1]+"="+v] {
					t.Errorf("the rules take %s...] of %s{%s=%q}, which has no series at start", c[0], name, m[1], v)
				}
			}
		}
	}
}

// TestAud13ProxyUpstreamRefusalCounted: in proxy mode the upstream's own
// refusal at MAIL or RCPT, relayed to the client and logged as a reject
// line with relay=, is an upstream reply to the client's mail: it counts in
// relaykeeper_upstream_replies_total and in the rejection rates, as the
// same refusal does when the relay delivers from its spool. It was counted
// only as an intake refusal, so a proxy whose upstream refused every
// recipient showed a 0% rejection rate and never alerted, while the
// enforcer's verdicts on the same replies were counted. The relay's own
// refusals (no relay=) and the relay's "upstream ... failed" (X.4.Y) are
// not upstream verdicts on the mail.
func TestAud13ProxyUpstreamRefusalCounted(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	log := maillog.NewWithClock(nil, func() time.Time { return now })
	log.Observe(m)
	const client = "192.0.2.5:4000"
	log.Reject(client, "rcpt", "550 5.1.1 <gone@example.net>: no such user", "from", "<a@example.org>",
		"to", "<gone@example.net>", "relay", "smarthost:25")
	log.Reject(client, "mail", "421 4.7.28 rate limited", "from", "<a@example.org>", "relay", "smarthost:25")
	log.Reject(client, "rcpt", "451 4.4.1 upstream rcpt failed", "from", "<a@example.org>",
		"to", "<b@example.net>", "relay", "smarthost:25")
	log.Reject(client, "rcpt", "554 5.7.1 <c@example.com>: Relay access denied", "from", "<a@example.org>", "to", "<c@example.com>")
	log.Proxy("6B0000000000000A", client, "a@example.org", 1, 100, "smarthost:25", maillog.Sent, "250 2.0.0 Ok", "")

	for class, want := range map[string]float64{"2xx": 1, "4xx": 1, "5xx": 1} {
		if got := testutil.ToFloat64(m.replies.WithLabelValues(class)); got != want {
			t.Errorf("upstream_replies_total{class=%q} = %v; want %v", class, got, want)
		}
	}
	var found bool
	for _, cr := range m.Rates(now.Add(-time.Hour)) {
		if cr.Client == "192.0.2.5" {
			found = true
			if cr.Replies != 3 || cr.Refused != 2 {
				t.Errorf("rate of 192.0.2.5 = %d refused of %d replies; want 2 of 3", cr.Refused, cr.Replies)
			}
		}
	}
	if !found {
		t.Errorf("no rejection rate for 192.0.2.5: %+v", m.Rates(now.Add(-time.Hour)))
	}
}
