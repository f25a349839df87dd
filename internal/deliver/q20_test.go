package deliver

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/route"
)

// TestQ20SlowStartWindowCapped: a slow-started destination's window grows
// with each delivery only up to its concurrency limit, as Postfix's
// qmgr_queue_unthrottle stops at the limit, so that a failure to connect
// after a good spell lowers the sessions at once. The window used to grow
// without bound: after 50 deliveries, 40 failures in a row still left the
// destination at its full limit.
func TestQ20SlowStartWindowCapped(t *testing.T) {
	s := New(Options{})
	rt := route.Destination{Key: "d", ConcurrencyLimit: 3, InitialConcurrency: 1}
	if w := s.window(rt, 3); w != 1 {
		t.Fatalf("first window = %d; want 1", w)
	}
	for range 50 {
		s.feedback(rt, true)
	}
	if w := s.window(rt, 3); w != 3 {
		t.Fatalf("window after 50 deliveries = %d; want the limit, 3", w)
	}
	s.feedback(rt, false)
	if w := s.window(rt, 3); w != 2 {
		t.Errorf("window after a good spell and one failure to connect = %d; want 2", w)
	}
	s.feedback(rt, false)
	s.feedback(rt, false)
	if w := s.window(rt, 3); w != 1 {
		t.Errorf("window after three failures = %d; want 1", w)
	}

	// Without its own limit, the [routing] default caps it.
	s = New(Options{DestinationConcurrency: 4})
	rt = route.Destination{Key: "e", InitialConcurrency: 1}
	s.window(rt, 4)
	for range 20 {
		s.feedback(rt, true)
	}
	s.feedback(rt, false)
	if w := s.window(rt, 4); w != 3 {
		t.Errorf("default limit 4: window after deliveries and a failure = %d; want 3", w)
	}
}
