package e2e

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRep19BanHoldsDeferredMessage: the spammer's first message is in
// the middle of its delivery (Gmail is slow to answer its RCPT) when its
// second is refused as spam and the client banned. The enforcer holds the
// client's queued mail, but not this one, claimed at that moment; Gmail
// then defers it. It must be held, not sent on at its next retry.
func TestRep19BanHoldsDeferredMessage(t *testing.T) {
	t.Parallel()
	banHoldsClaimed(t, "451 4.3.0 Temporary System Problem. Try again later (10). r19 - gsmtp", "127.0.0.33")
}

// banHoldsClaimed: the spammer's (client spammer's) first message gets
// Gmail's deferral at its RCPT, two seconds late; meanwhile its second is
// refused as spam and the client banned. The first must end held, never
// accepted by Gmail after the ban.
func banHoldsClaimed(t *testing.T, deferral, spammer string) {
	t.Helper()
	var mu sync.Mutex
	slowed := false
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			switch {
			case stage == harness.StageRcpt && arg == "later@gmail.test":
				mu.Lock()
				defer mu.Unlock()
				if !slowed {
					slowed = true
					return harness.Response{Delay: 2 * time.Second, Reply: deferral}
				}
			case stage == harness.StageEndOfData && slices.Contains(tx.To(), "spam@gmail.test"):
				return harness.Response{Reply: strings.ReplaceAll(gmailUnsolicited, "{id}", "r19spam")}
			}
			return harness.Response{}
		}})
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})

	tx, err := sendFrom(r.addr(), spammer, "eve@spam.example", []string{"later@gmail.test"}, gmailMessage("eve@spam.example", "first"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	firstID := queuedID(t, tx.Final)
	if !waitFor(5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return slowed }) {
		t.Fatal("the first message did not reach Gmail's RCPT")
	}
	tx, err = sendFrom(r.addr(), spammer, "eve@spam.example", []string{"spam@gmail.test"}, gmailMessage("eve@spam.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	r.waitEvent("ban", 10*time.Second, nil)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == firstID })
	time.Sleep(3 * time.Second) // past the 1s back-off: time for a retry, if any
	if n := len(rep19Txs(gmail, func(tx harness.Transaction) bool {
		return tx.Accepted() && slices.Contains(tx.To(), "later@gmail.test")
	})); n != 0 {
		t.Errorf("Gmail accepted the banned client's message %d times after the ban; want 0", n)
	}
	if s := msgState(r.spool, firstID); s != "held" {
		t.Errorf("the banned client's deferred message is %s; want held (Gmail's reply: %q)", s, deferral)
	}
}
