package metrics

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// TestOps22ProxyCounts: a proxied message counts on the dashboard as the
// same message stored and delivered does. The admin status (and the
// dashboard's status line, "N recipient(s) delivered") counted a proxied
// message of three recipients as one recipient forwarded and as no message
// accepted, and the traffic plot counted a message the upstream refused
// (the client heard the 4xx or 5xx) as accepted.
func TestOps22ProxyCounts(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)
	log := maillog.NewWithClock(nil, func() time.Time { return now })
	log.Observe(m)
	const client = "192.0.2.5:4000"
	log.Proxy("6B0000000000000A", client, "a@example.org", 3, 100, "smarthost:25", maillog.Sent, "250 2.0.0 Ok", "")
	log.Proxy("6B0000000000000B", client, "a@example.org", 2, 100, "smarthost:25", maillog.Bounced, "554 5.7.1 refused", "")
	log.Proxy("6B0000000000000C", client, "a@example.org", 4, 100, "smarthost:25", maillog.Deferred, "451 4.4.1 upstream data failed", "")

	want := Counters{Accepted: 1, Forwarded: 3, Failed: 2}
	if got := m.Counters(); got != want {
		t.Errorf("status counters after three proxied messages = %+v; want %+v", got, want)
	}
	act := m.Activity(now, 1)
	wantMinute := Minute{Time: now.Truncate(time.Minute), Accepted: 1, Delivered: 3, Bounced: 2, Deferred: 4}
	if len(act) != 1 || act[0] != wantMinute {
		t.Errorf("the traffic plot's minute = %+v; want %+v", act, wantMinute)
	}
}

// TestOps22GrafanaTrafficCountsProxy: the example Grafana dashboard's
// "Messages per minute" panel draws a proxy's traffic too. It drew only
// relaykeeper_messages_accepted_total (messages stored) and
// relaykeeper_deliveries_total (deliveries from the spool), so for a relay
// run as --as-proxy (the README's Gmail set-up) it stayed at zero however
// much mail went through.
func TestOps22GrafanaTrafficCountsProxy(t *testing.T) {
	b, err := os.ReadFile("../../etc/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Title == "Messages per minute" {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	if len(exprs) == 0 {
		t.Fatal(`no "Messages per minute" panel in etc/grafana-dashboard.json`)
	}
	for _, name := range []string{"relaykeeper_messages_accepted_total", "relaykeeper_messages_proxied_total", "relaykeeper_deliveries_total"} {
		if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, name) }) {
			t.Errorf("the Messages per minute panel does not draw %s; its queries: %q", name, exprs)
		}
	}
}

// TestOps22ActionsDocumented: the values of relaykeeper_enforce_actions_total's
// action label that docs/metrics.md lists are the mail-log events the
// metrics count there, and each is an event of docs/maillog.md. The code
// counted unban lines, which the page did not name, and an "unblock"
// event that nothing writes.
func TestOps22ActionsDocumented(t *testing.T) {
	row := func(file, prefix string) string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		t.Fatalf("%s: no line starting %q", file, prefix)
		return ""
	}
	line := row("../../docs/metrics.md", "| `relaykeeper_enforce_actions_total` |")
	what := line[strings.LastIndex(line, "| actions"):]
	what, _, _ = strings.Cut(what, "(not")
	var documented []string
	for _, f := range strings.Split(what, "`")[1:] {
		if f != "" && !strings.ContainsAny(f, " ,") {
			documented = append(documented, f)
		}
	}
	var counted []string
	for ev := range actionEvents {
		counted = append(counted, ev)
	}
	slices.Sort(documented)
	slices.Sort(counted)
	if !slices.Equal(documented, counted) {
		t.Errorf("docs/metrics.md lists the actions %q; the metrics count the events %q", documented, counted)
	}
	for _, ev := range counted {
		row("../../docs/maillog.md", "| `"+ev+"` |")
	}
}

// TestOps22ProxyRatePerRecipient: a proxy's rejection rate counts the
// upstream's reply to a message's content once for each recipient it
// covers, as the delivery lines of a stored message do, and as each
// refused RCPT counts once. It counted the content's reply once per
// message: a proxy relaying 10 messages of 10 recipients with one unknown
// recipient each showed 10 refused of 20 replies (50%) and raised the
// rate alert, where a relay that stores and forwards the same mail shows
// 10 of 100. relaykeeper stats reads the same rates from the mail log.
func TestOps22ProxyRatePerRecipient(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)
	var text strings.Builder
	log := maillog.NewWithClock(&text, func() time.Time { return now })
	log.Observe(m)
	const client = "192.0.2.5:4000"
	log.Reject(client, "rcpt", "550 5.1.1 <gone@example.net>: no such user", "from", "<a@example.org>",
		"to", "<gone@example.net>", "relay", "smarthost:25")
	log.Proxy("6B0000000000000A", client, "a@example.org", 9, 100, "smarthost:25", maillog.Sent, "250 2.0.0 Ok", "")
	if got := testutil.ToFloat64(m.replies.WithLabelValues("2xx")); got != 9 {
		t.Errorf(`upstream_replies_total{class="2xx"} = %v; want 9, one per recipient delivered`, got)
	}
	check := func(from string, rates []stats.ClientRate) {
		for _, cr := range rates {
			if cr.Client == "192.0.2.5" && (cr.Replies != 10 || cr.Refused != 1) {
				t.Errorf("%s: rate of 192.0.2.5 = %d refused of %d replies; want 1 of 10", from, cr.Refused, cr.Replies)
			}
		}
	}
	check("metrics", m.Rates(now.Add(-time.Hour)))
	rep, err := stats.Aggregate(strings.NewReader(text.String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	check("relaykeeper stats", rep.RejectionRates)
}
