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
	run(t, s2)
	waitFor(t, func() bool { _, _, err := sp.Read(id); return err != nil })
	if got := up.got(); len(got) != 1 {
		t.Errorf("upstream received %v; want one", got)
	}
}

// TestFarAheadSparesPacedMail: a destination paced or out of its quota
// holds its mail up to a day, far beyond the back-off; such a wait is no
// clock step. With the step rule at twice maximal_backoff_time, a paced
// message (pace_suspend 30 s, maximal back-off 2 s) was claimed again at
// once, and mail held for Gmail's daily quota would have been retried at
// every scan.
func TestFarAheadSparesPacedMail(t *testing.T) {
	s := New(Options{MaxBackoff: 2 * time.Second, Pace: PaceOptions{Suspend: 30 * time.Second}})
	now := time.Now()
	for _, d := range []time.Duration{30 * time.Second, time.Hour, 24 * time.Hour} {
		if s.farAhead(now.Add(d), now) {
			t.Errorf("a wait of %v taken for a clock step", d)
		}
	}
	if !s.farAhead(now.Add(10*24*time.Hour), now) {
		t.Errorf("a next attempt ten days ahead not taken for a clock step")
	}
}
