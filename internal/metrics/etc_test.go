package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestEtcNamesExist: every relaykeeper_ series the shipped alert rules and
// Grafana dashboard query is one the relay exports, so that a renamed
// metric cannot leave a rule that silently never fires.
func TestEtcNamesExist(t *testing.T) {
	m := New(Options{})
	now := time.Now()
	log := maillog.NewWithClock(nil, func() time.Time { return now })
	log.Observe(m)
	// Touch every vector so that it is gathered.
	log.Connect("192.0.2.1:1", "", "l")
	log.Reject("192.0.2.1:1", "rcpt", "554 5.7.1 no")
	log.Accept("A", "192.0.2.1:1", "a@example.org", 1, 10, "", "")
	log.Proxy("B", "192.0.2.1:1", "a@example.org", 1, 10, "r", maillog.Sent, "250 ok", "")
	log.Deliver(maillog.Delivery{ID: "A", To: "b@example.net", Result: maillog.Sent, Reply: "250 ok", Client: "192.0.2.1:1"})
	log.Companion("alert", "destination", "gmail.com", "reply", "535 5.7.8 bad credentials")
	m.Verdict(550, "ban")
	m.ObserveSync(spool.SyncFile, time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
	}
	for _, want := range []string{"relaykeeper_queue_messages", "relaykeeper_bans_active", "relaykeeper_smtp_sessions_open"} {
		known[want] = true // read from sources this test does not give
	}
	known["relaykeeper_queue_oldest_message_age_seconds"] = true
	known["relaykeeper_queue_messages_by_age"] = true
	known["relaykeeper_spool_bytes"] = true
	known["relaykeeper_queue_quarantined_messages"] = true
	known["relaykeeper_blocked_domains"] = true

	name := regexp.MustCompile(`relaykeeper_[a-z_]+`)
	for _, file := range []string{"../../etc/prometheus/relaykeeper-alerts.yml", "../../etc/grafana-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(file, ".json") {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
		for _, n := range name.FindAllString(string(b), -1) {
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suf)
			}
			if !known[n] && !known[base] {
				t.Errorf("%s queries %s, which the relay does not export", file, n)
			}
		}
	}
}

// lintQueue is a spool of one ready message, for the queue's gauges.
type lintQueue struct{}

func (lintQueue) List() ([]spool.Entry, error) {
	return []spool.Entry{{ID: "6B14345B47B6503B", State: spool.Ready}}, nil
}
func (lintQueue) ContentSize(string) (int64, error) { return 100, nil }

// TestLint: every series, the queue's gauges included, passes the checks
// of promtool check metrics (promlint). An outside check found a gauge
// with an "le" label, which promtool refuses.
func TestLint(t *testing.T) {
	m := New(Options{Queue: lintQueue{}})
	m.Verdict(550, "ban")
	m.ObserveSync(spool.SyncFile, time.Millisecond)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
