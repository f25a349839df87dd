package deliver

import (
	"context"
	"testing"
	"time"
)

// TestHurryBeforeRunHolds: a second signal can come before the
// scheduler's goroutine has begun Run; Run used to clear the mark at its
// start, so the operator's "stop now" was lost and shutdown waited out the
// whole grace for a delivery hanging at the upstream.
func TestHurryBeforeRunHolds(t *testing.T) {
	up := startUpstream(t)
	up.hold, up.inData = make(chan struct{}), make(chan struct{}, 10)
	defer close(up.hold)
	_, s, _, _ := setup(t, up.addr, "0@example.net")
	s.opts.Connections = 1
	s.opts.Grace = time.Hour
	s.Hurry()
	done := runToUpstream(t, s, up)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits out its grace (an hour) after a Hurry that came before it began")
	}
}

// runToUpstream runs s until a message's text reaches up (which holds
// it), then ends Run's context; done closes when Run returns.
func runToUpstream(t *testing.T, s *Scheduler, up *upstream) (done chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case <-up.inData:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("no message reached the upstream")
	}
	cancel()
	return done
}
