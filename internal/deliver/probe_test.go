package deliver

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// passFilter is a client filter that passes every message and never asks
// to end the run (as the DKIM signer).
type passFilter struct{}

func (passFilter) Run(context.Context, string, string) filter.Result {
	return filter.Result{Outcome: filter.OK}
}
func (passFilter) String() string { return "pass" }
func (passFilter) NeverStops()    {}

// TestClientFilterNeverStopsRunsInParallel: a client filter that never
// stops the run (DKIM signing is one) must not make the destinations wait
// for one another: with two connections, b.example's message goes while
// the other destination's upstream is slow to answer DATA.
func TestClientFilterNeverStopsRunsInParallel(t *testing.T) {
	for _, withFilter := range []bool{false, true} {
		upA, upB := startUpstream(t), startUpstream(t)
		hold, inData := make(chan struct{}), make(chan struct{}, 4)
		upA.hold, upA.inData, upB.hold, upB.inData = hold, inData, hold, inData
		sp, s, _, _ := setup(t, "", "1@a.example")
		w, _ := sp.Create(t0)
		io.WriteString(w, "Subject: b\r\n\r\nbody\r\n")
		w.Prepare(&spool.Envelope{From: "a@example.com", Arrival: t0, Client: "127.0.0.1:1",
			Recipients: []spool.Recipient{{Addr: "2@b.example", Status: spool.Pending}}})
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
		s.opts.Router = &domainRouter{up: map[string]*upstream{"a.example": upA, "b.example": upB}, dials: map[string]int{}}
		if withFilter {
			s.opts.ClientFilter = passFilter{}
		}
		done := make(chan struct{})
		go func() { s.RunOnce(context.Background()); close(done) }()
		<-inData
		select {
		case <-inData:
		case <-time.After(3 * time.Second):
			t.Errorf("client filter %v: one destination's DATA is pending and the other's message did not start in 3 s", withFilter)
		}
		close(hold)
		<-done
	}
}
