package deliver

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestGd28SchedulerKeepsProxyPause: a proxy paused by its upstream's
// "slow down" (421 try again later) refused its clients, but its
// scheduler, which carries what the relay queues itself (bounce reports,
// encapsulations), went on opening sessions to the same upstream. Now the
// scheduler's sessions to the proxy's upstream wait for the pause too,
// and go when it ends.
func TestGd28SchedulerKeepsProxyPause(t *testing.T) {
	up := startUpstream(t)
	sp, s, clk, id := setup(t, up.addr, "report@example.net")
	s.opts.Verdicts = EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}}
	pp := s.ProxyPace()
	if s.ProxyPace() != pp {
		t.Fatal("ProxyPace returned a second pace: the proxy and the scheduler would not share one")
	}
	u, err := enforce.ParseReply("421 4.7.0 Try again later, closing connection. x1 - gsmtp")
	if err != nil {
		t.Fatal(err)
	}
	if !pp.Signal("greeting", u.Reply) {
		t.Fatal("the proxy did not pause for 421 try again later")
	}
	until, _, _ := pp.Paused()
	run(t, s)
	s.Kick(true)
	clk.Advance(30 * time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := up.sessionCount(); n != 0 {
		t.Errorf("the scheduler opened %d sessions to the upstream while the proxy was paused; want none", n)
	}
	env, st, err := sp.Read(id)
	if env == nil {
		t.Fatalf("queued message: %v, %v; want it still queued", st, err)
	}
	if err != nil || st != spool.Ready || env.Attempts != 0 || !env.NextAttempt.Equal(until) {
		t.Fatalf("queued message %v, %d attempts, next %v (%v); want ready, untried, due at the pause's end %v", st, env.Attempts, env.NextAttempt, err, until)
	}
	for i := 0; i < 200 && len(up.got()) < 1; i++ {
		clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if got := up.got(); len(got) != 1 {
		t.Fatalf("after the pause the upstream got %v; want the queued message", got)
	}
}
