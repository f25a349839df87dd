package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestEnforceDeliveryLineOutcome: the mail log's delivery line says what
// became of the recipient, as `relaykeeper stats` counts it. A recipient
// forwarded encapsulated after a DMARC refusal is not bounced (no bounce is
// sent); a 421 spam deferral made permanent (554) is bounced, not deferred
// (a bounce is sent, and the message is never retried).
func TestEnforceDeliveryLineOutcome(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("bob@gmail.test", stData, gmailDMARC)
	gmail.answer("rate@gmail.test", stData, gmailIPRateLimited)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{})
	send := func(ip, to string) string {
		tx, err := sendFrom(r.addr(), ip, "a@ok.example", []string{to}, gmailMessage("a@ok.example", "line "+to))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
		return queuedID(t, tx.Final)
	}
	encapsulated, permanent := send("127.0.5.1", "bob@gmail.test"), send("127.0.5.2", "rate@gmail.test")
	if !waitFor(10*time.Second, func() bool {
		return msgState(r.spool, encapsulated) == "gone" && msgState(r.spool, permanent) == "failed"
	}) {
		t.Fatalf("after 10s: %s, %s; want gone (encapsulated) and failed (bounced)", msgState(r.spool, encapsulated), msgState(r.spool, permanent))
	}
	r.waitEvent("notice", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == permanent && e.Get("kind") == "failure" })
	if ns := eventsWith(r, "notice", "orig", encapsulated); len(ns) != 0 {
		t.Errorf("notices for the encapsulated message: %v; want none", fieldsOf(ns))
	}
	for _, c := range []struct{ id, to, not, why string }{
		{encapsulated, "bob@gmail.test", "bounced", "forwarded encapsulated, no bounce sent"},
		{permanent, "rate@gmail.test", "deferred", "made permanent (554), bounced, never retried"},
	} {
		for _, e := range eventsWith(r, "delivery", "id", c.id) {
			if e.Get("result") == c.not {
				t.Errorf("delivery line for %s (%s): result=%s; the recipient was %s (stats counts it %s)",
					c.id, c.to, c.not, c.why, c.not)
			}
		}
	}
}
