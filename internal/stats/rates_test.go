package stats

import (
	"testing"
	"time"
)

func TestRatesAlertOncePerHour(t *testing.T) {
	var r Rates
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var alerts []ClientRate
	// 19 good replies and one refusal: 5% of 20, over 2% of at least 20.
	for i := range 19 {
		alerts = append(alerts, r.Add(t0.Add(time.Duration(i)*time.Minute), "192.0.2.1", false)...)
	}
	if len(alerts) != 0 {
		t.Fatalf("alerts before any refusal: %+v", alerts)
	}
	alerts = r.Add(t0.Add(30*time.Minute), "192.0.2.1", true)
	if len(alerts) != 2 || alerts[0].Client != "192.0.2.1" || alerts[1].Client != RelayClient {
		t.Fatalf("Add(refusal 20 of 20) = %+v; want the client's and the relay's alert", alerts)
	}
	if got := r.Add(t0.Add(31*time.Minute), "192.0.2.1", true); len(got) != 0 {
		t.Errorf("second refusal in the hour alerted again: %+v", got)
	}
	// The next hour starts afresh.
	if got := r.Add(t0.Add(61*time.Minute), "192.0.2.1", true); len(got) != 0 {
		t.Errorf("one reply in a new hour alerted: %+v", got)
	}
	list := r.List(time.Time{})
	if len(list) != 4 || list[0].Hour != t0.Add(time.Hour) || list[0].Client != RelayClient {
		t.Fatalf("List = %+v; want the new hour's relay rate first", list)
	}
	if got := list[2]; got.Replies != 21 || got.Refused != 2 || !got.Alert {
		t.Errorf("relay's first hour = %+v; want 2 of 21 with an alert", got)
	}
}

func TestRatesBelowMinimum(t *testing.T) {
	var r Rates
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for range 10 {
		if got := r.Add(t0, "192.0.2.1", true); len(got) != 0 {
			t.Fatalf("alert with fewer than %d replies: %+v", DefaultThreshold.Min, got)
		}
	}
}

func TestUpstreamRefusal(t *testing.T) {
	tests := []struct {
		reply       string
		refused, ok bool
	}{
		{"250 2.0.0 OK", false, true},
		{"421-4.7.28 Gmail has detected an unusual rate", true, true},
		{"550 5.7.1 likely unsolicited mail", true, true},
		{"dial tcp 127.0.0.1:25: connection refused", false, false},
		{"451 4.4.1 upstream connect failed: connection refused", false, false},
		{"421-4.4.2 connection dropped", false, false},
		{"550 5.1.1 no such user", true, true},
		{"", false, false},
		{"5500 x", false, false},
	}
	for _, tt := range tests {
		refused, ok := UpstreamRefusal(tt.reply)
		if refused != tt.refused || ok != tt.ok {
			t.Errorf("UpstreamRefusal(%q) = %v, %v; want %v, %v", tt.reply, refused, ok, tt.refused, tt.ok)
		}
	}
}
