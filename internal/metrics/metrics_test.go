package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var (
	_ maillog.Observer   = (*Metrics)(nil)
	_ spool.SyncObserver = (*Metrics)(nil)
	_ Queue              = (*spool.Spool)(nil)
	_ BanList            = (*enforce.Bans)(nil)
	_ BlockList          = enforce.BlockTable{}
)

func TestDestinationsBounded(t *testing.T) {
	m := New(Options{})
	log := maillog.NewWithClock(nil, time.Now)
	log.Observe(m)
	for i := range MaxDestinations + 10 {
		log.Deliver(maillog.Delivery{ID: "X", To: fmt.Sprintf("u@d%d.example", i), Relay: "r", Result: maillog.Sent,
			Reply: "250 ok", Client: "192.0.2.1:1"})
	}
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues("sent", "other")); got != 10 {
		t.Errorf(`deliveries{destination="other"} = %v; want 10`, got)
	}
	if n := testutil.CollectAndCount(m.deliveries); n != MaxDestinations+1 {
		t.Errorf("%d delivery series; want %d", n, MaxDestinations+1)
	}
}

func TestRefusalReasonAndAlert(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	log := maillog.NewWithClock(nil, func() time.Time { return now })
	log.Observe(m)
	log.Reject("192.0.2.9:1", "rcpt", "554 5.7.1 <x@y>: Relay access denied")
	log.Reject("192.0.2.9:1", "helo", "hostile text <script>")
	if got := testutil.ToFloat64(m.refused.WithLabelValues("rcpt", "5.7.1")); got != 1 {
		t.Errorf(`refused{rcpt,5.7.1} = %v; want 1`, got)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("helo", "other")); got != 1 {
		t.Errorf(`refused{helo,other} = %v; want 1 (free text never becomes a label)`, got)
	}
	for i := range 20 {
		reply := "250 ok"
		if i == 0 {
			reply = "550-5.7.1 likely unsolicited mail"
		}
		log.Deliver(maillog.Delivery{ID: "X", To: "u@gmail.com", Relay: "r", Result: maillog.Sent, Reply: reply, Client: "192.0.2.7:25"})
	}
	alerts := m.Alerts()
	if len(alerts) != 2 || !strings.Contains(alerts[1].Text, "client 192.0.2.7") || alerts[0].Cause != "relay_rejection_rate" {
		t.Errorf("Alerts = %+v; want the client's and the relay's rate alert", alerts)
	}
	log.Accept("A", "192.0.2.9:1", "a@example.org", 1, 100, "", "")
	log.AcceptBack("B", "192.0.2.9:1", "a@example.org", 1, 120, "127.0.0.1:10025", "")
	if c := m.Counters(); c.Forwarded != 20 || c.Accepted != 1 {
		t.Errorf("Counters = %+v; want 20 forwarded, 1 accepted (the filter's return is the same message)", c)
	}
	if a := m.Activity(now, 2); len(a) != 2 || a[1].Delivered != 20 {
		t.Errorf("Activity = %+v; want 20 delivered in the last minute", a)
	}
}

func TestPacesFromLog(t *testing.T) {
	m := New(Options{})
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	log := maillog.NewWithClock(nil, func() time.Time { return now })
	log.Observe(m)
	log.Companion("pace", "destination", "gmail.com", "verdict", "pace", "until", now.Add(time.Minute).Format(time.RFC3339),
		"delay", "5s", "concurrency", "1", "reply", "421 4.7.28 unusual rate")
	got := m.Paces()
	if len(got) != 1 || got[0].Destination != "gmail.com" || got[0].Delay != 5 || got[0].Concurrency != 1 || !got[0].Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("Paces = %+v; want gmail.com paced", got)
	}
	log.Companion("pace", "destination", "gmail.com", "verdict", "resume")
	if got := m.Paces(); len(got) != 0 {
		t.Errorf("Paces after resume = %+v; want none", got)
	}
}

// TestRevPX3AlertSeriesFromStart: relaykeeper_alerts_total has its causes'
// series at 0 from the start. The shipped alert rule,
// increase(relaykeeper_alerts_total{cause="alert"}[15m]) > 0, never fired
// for a relay's first alert: a series that first appears at 1 has no
// increase in Prometheus.
func TestRevPX3AlertSeriesFromStart(t *testing.T) {
	m := New(Options{})
	for _, cause := range []string{"alert", "client_rejection_rate", "relay_rejection_rate"} {
		if n := testutil.CollectAndCount(m.alertsTotal); n != 3 {
			t.Fatalf("%d relaykeeper_alerts_total series at start; want 3", n)
		}
		if got := testutil.ToFloat64(m.alertsTotal.WithLabelValues(cause)); got != 0 {
			t.Errorf("alerts_total{cause=%q} = %v; want 0", cause, got)
		}
	}
}
