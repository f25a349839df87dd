package metrics

import (
	"strconv"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// ops25Queue is a spool migrated from E-MailRelay: one message of its,
// named emailrelay.PID.SECONDS.SEQ, still ready.
type ops25Queue struct{ id string }

func (q ops25Queue) List() ([]spool.Entry, error) {
	return []spool.Entry{{ID: q.id, State: spool.Ready}}, nil
}
func (ops25Queue) ContentSize(string) (int64, error) { return 100, nil }

// TestOps25QueueAgeOfEmailRelayMessages: `queue list` gives a message
// E-MailRelay wrote the arrival in its file name, but the queue's age
// gauges read the time from relaykeeper's own ids only and took every
// E-MailRelay message for one that had just arrived: a day-old backlog of
// a migrated spool was "younger than 300 s", and the alert rule on
// relaykeeper_queue_oldest_message_age_seconds never fired for it.
func TestOps25QueueAgeOfEmailRelayMessages(t *testing.T) {
	arrival := time.Now().Add(-25 * time.Hour).Truncate(time.Second)
	id := "emailrelay.4242." + strconv.FormatInt(arrival.Unix(), 10) + ".1"
	now := arrival.Add(25 * time.Hour)
	if got := IDAge(id, now); got != 25*time.Hour {
		t.Errorf("IDAge(%q) = %v; want 25h0m0s", id, got)
	}

	fams, err := New(Options{Queue: ops25Queue{id}}).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["state"] == "ready" {
				got[f.GetName()+"/"+labels["max_age_seconds"]] = m.GetGauge().GetValue()
			}
		}
	}
	if age := got["relaykeeper_queue_oldest_message_age_seconds/"]; age < 25*3600 {
		t.Errorf(`relaykeeper_queue_oldest_message_age_seconds{state="ready"} = %v; want 25 hours or more`, age)
	}
	for bound, want := range map[string]float64{"300": 0, "3600": 0, "14400": 0, "86400": 0, "432000": 1} {
		if n := got["relaykeeper_queue_messages_by_age/"+bound]; n != want {
			t.Errorf(`relaykeeper_queue_messages_by_age{max_age_seconds=%q,state="ready"} = %v; want %v`, bound, n, want)
		}
	}
}
