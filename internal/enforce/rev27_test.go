package enforce

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRev27ClaimWhileBanIsSaved: the queue claims a spammer's ready
// message (HoldNow, then the claim) in the moment between markPending,
// which has put it in the pending file, and the ban's save. The ban is
// not in force yet, so the message goes out; but it must stay pending,
// so that it is held if it comes back (a deferral), as it was when the
// ban was saved before the queue was looked at. HoldNow consumed the
// entry as "not banned" and the message went out at its next retry too.
func TestRev27ClaimWhileBanIsSaved(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	var err error // the claim's, in the ban file's clock
	ready := s27Queue(t, sp, "203.0.113.9")
	pending := filepath.Join(dir, "hold-pending")
	var e *Enforcer
	var claim *spool.Claim
	var heldAtClaim, fired bool
	bans, err := OpenBans(filepath.Join(dir, "bans"), func() time.Time {
		if b, _ := os.ReadFile(pending); !fired && e != nil && strings.Contains(string(b), ready) {
			// The queue, in the moment the ban is being saved.
			fired = true
			heldAtClaim = e.HoldNow(ready)
			if claim, err = sp.Claim(ready); err != nil {
				t.Fatal(err)
			}
		}
		return time.Now()
	})
	if err != nil {
		t.Fatal(err)
	}
	e = &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Bans: bans,
		MailLog: maillog.New(nil)}
	rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "eve@spam.example",
		To: []string{"u@gmail.com"}, Upstream: upstream(gmailUnsolicited)}
	rf.Host = "gmail-smtp-in.l.google.com[142.250.1.26]:25"
	e.Act(context.Background(), rf)
	if claim == nil {
		t.Fatal("the ban's clock never ran with the message pending")
	}
	if _, banned := bans.Due(netip.MustParseAddr("203.0.113.9")); !banned {
		t.Fatal("the spammer is not banned")
	}
	claim.Unlock() // deferred: back in the queue, ready
	if heldAtClaim {
		return // held at once: as good
	}
	if !e.HoldNow(ready) {
		b, _ := os.ReadFile(pending)
		t.Errorf("the banned client's message, claimed as the ban was saved and back in the queue: HoldNow = false (pending file %q); want it held", b)
	}
}
