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

// TestRev19aBanHoldsPacedMessage: as TestRep19BanHoldsDeferredMessage,
// but the claimed message's own refusal is one of Gmail's pace replies
// ("receiving mail at a rate that prevents ..."), not a plain deferral.
// Its client was banned while it was in delivery: it must be held, not
// sent at its next retry. The scheduler cleared Outcome.Hold for every
// pace or alert verdict, and the enforcer had forgotten the pending hold
// when it answered, so nothing held it.
func TestRev19aBanHoldsPacedMessage(t *testing.T) {
	t.Parallel()
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
					return harness.Response{Delay: 2 * time.Second, Reply: "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\r\n" +
						"450-4.2.1 prevents additional messages from being delivered. Please resend your\r\n" +
						"450 4.2.1 message at a later point. r19a - gsmtp"}
				}
			case stage == harness.StageEndOfData && slices.Contains(tx.To(), "spam@gmail.test"):
				return harness.Response{Reply: strings.ReplaceAll(gmailUnsolicited, "{id}", "r19aspam")}
			}
			return harness.Response{}
		}})
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	const spammer = "127.0.0.34"

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
		t.Errorf("the banned client's paced message is %s; want held", s)
	}
}
