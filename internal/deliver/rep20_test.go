package deliver

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRep20StalePacesForgotten: a client that may relay mails thousands of
// addresses at its own domain, whose server answers each "450 4.2.1 ...
// receiving mail too quickly" once and then refuses it for good (or the
// message expires). Every recipient got a pace of its own that nothing
// ever ended (only a delivery ends one), so the paces grew without bound,
// and each new rate reply rewrote all of them to the pace file: the relay
// slowed itself down for everyone. A pace whose suspension ended long ago
// (pace_max_suspend) with no signal since is forgotten, and no more than
// maxPaces are kept (those whose suspension ends first go first).
func TestRep20StalePacesForgotten(t *testing.T) {
	sp, s, clk, _ := setup(t, "127.0.0.1:9")
	busy := reply.Reply{Code: 450, Enhanced: "4.2.1", Lines: []string{"4.2.1 The user you are trying to contact is receiving mail too quickly."}}
	// Gmail, the smarthost, said "too fast" three times: its delivery
	// delay has grown, and the relay still goes slowly there. Neither
	// the flood nor the hours forget that pace.
	rate := reply.Reply{Code: 421, Enhanced: "4.7.28", Lines: []string{"4.7.28 Gmail has detected an unusual rate of email originating from your IP address."}}
	for range 3 {
		s.paceSignal("smtp/gmail.com", VerdictPace, rate)
	}
	s.opts.Spool = nil // the file is checked at the end: quicker
	for i := range maxPaces + 500 {
		s.paceSignal(fmt.Sprintf("rcpt:u%d@attacker.example", i), VerdictPaceRecipient, busy)
		clk.Advance(time.Millisecond)
	}
	if n := len(s.Paces()); n > maxPaces {
		t.Errorf("%d paces kept after %d recipient rate replies; want at most %d", n, maxPaces+500, maxPaces)
	}
	clk.Advance(3 * time.Hour)
	s.opts.Spool = sp
	s.paceSignal("rcpt:last@attacker.example", VerdictPaceRecipient, busy)
	if ps := s.Paces(); len(ps) != 2 || ps[1].Destination != "smtp/gmail.com" {
		t.Errorf("paces three hours on: %+v; want Gmail's and the last recipient's", ps)
	}
	if saved, err := ReadPaces(sp.Dir()); err != nil || len(saved) != 2 {
		t.Errorf("pace file holds %d paces (%v); want 2", len(saved), err)
	}
}

// holdIDs is a Holds that holds the message it names, once.
type holdIDs struct {
	mu sync.Mutex
	id string
}

func (h *holdIDs) HoldNow(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := id == h.id
	if held {
		h.id = ""
	}
	return held
}

// TestRep20HoldAtClaim: a message whose client was banned while it was in
// flight, back in the queue after a crash, went out at once: the enforcer
// held it only when recovery had finished and the ban timer found it
// ready, and the queue, already running, claimed it first (the clean-clone
// CI of d719d02 saw it go out a millisecond after recovery put it back).
// The queue now asks Holds as it claims each message, in its own turn and
// when it claims one early behind the previous one's final dot (ahead).
func TestRep20HoldAtClaim(t *testing.T) {
	for _, which := range []int{0, 1} {
		t.Run(fmt.Sprint("message ", which), func(t *testing.T) {
			up := startUpstream(t)
			sp, s, _, first := setup(t, up.addr, "a@example.net")
			second := queueRcpts(t, sp, "b@example.net")
			ids := []string{first, second}
			s.opts.Holds = &holdIDs{id: ids[which]}
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, st, err := sp.Read(ids[which]); err != nil || st != spool.Held {
				t.Errorf("the banned client's message is %v (%v); want held", st, err)
			}
			other := []string{"b@example.net", "a@example.net"}[which]
			if got := up.got(); !slices.Equal(got, []string{other}) {
				t.Errorf("upstream got %v; want only %s", got, other)
			}
		})
	}
}
