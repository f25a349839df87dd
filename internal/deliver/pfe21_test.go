package deliver

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// TestPfe21QuotaPacesBounded: delivering by MX, any server may answer
// "550 5.4.5 Daily user sending limit exceeded", and the destination then
// waits out a quota window. A client that may relay mailed thousands of
// domains of its own whose server says so to each: quota paces were never
// forgotten beyond maxPaces ("never a quota's"), so they grew without
// bound for a day, and each new one rewrote all of them to the pace file,
// slowing the relay down for everyone. No more than maxPaces are kept now;
// the quotas set last go first, so the smarthost's own quota, set before
// the flood, stays.
func TestPfe21QuotaPacesBounded(t *testing.T) {
	_, s, clk, _ := setup(t, "127.0.0.1:9")
	quota := reply.Reply{Code: 550, Enhanced: "5.4.5", Lines: []string{"5.4.5 Daily user sending limit exceeded."}}
	s.paceSignal("smtp/smtp.gmail.com", VerdictQuota, quota)
	s.opts.Spool = nil // quicker
	for i := range maxPaces + 500 {
		clk.Advance(time.Millisecond)
		s.paceSignal(fmt.Sprintf("smtp/d%d.attacker.example", i), VerdictQuota, quota)
	}
	ps := s.Paces()
	if len(ps) > maxPaces {
		t.Errorf("%d paces kept after %d quota replies; want at most %d", len(ps), maxPaces+500, maxPaces)
	}
	kept := map[string]bool{}
	for _, p := range ps {
		kept[p.Destination] = true
	}
	last := fmt.Sprintf("smtp/d%d.attacker.example", maxPaces+499)
	if !kept["smtp/smtp.gmail.com"] || !kept[last] {
		t.Errorf("the smarthost's quota kept: %v, the last one signalled: %v; want both", kept["smtp/smtp.gmail.com"], kept[last])
	}
}
