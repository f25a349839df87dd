package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
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
