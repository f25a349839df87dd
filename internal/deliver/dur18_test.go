package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestDur18ClockSteppedBack: a message deferred at t0 waits until about
// t0+300s. The wall clock is then stepped back ten days (NTP fixing a
// clock that ran ahead). The message was held back by the whole step,
// ten days, in the running daemon (woken by a kick) and after a restart
// alike; a next attempt later than twice the maximal back-off is now due.
func TestDur18ClockSteppedBack(t *testing.T) {
	up := startUpstream(t)
	up.set("r@example.net", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "not now"})
	sp, s, clk, id := setup(t, up.addr, "r@example.net")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor(t, func() bool { env, _, _ := sp.Read(id); return env != nil && env.Attempts == 1 })
	clk.Advance(-10 * 24 * time.Hour)
	ArrivalKick{s}.Kick(false) // a client's message wakes the loop
	waitFor(t, func() bool { env, _, _ := sp.Read(id); return env != nil && env.Attempts == 2 })
	cancel()
	<-done

	// A restart under the stepped clock, the message deferred again at
	// t0-10d, then the clock stepped back once more.
	up.set("r@example.net", nil)
	clk.Advance(-10 * 24 * time.Hour)
	s2 := New(s.opts)
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { s2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { _, _, err := sp.Read(id); return err != nil })
	if got := up.got(); len(got) != 1 {
		t.Errorf("upstream received %v; want one", got)
	}
}
