package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// Hostile review of the relay's own enforcement (rep19): can one client
// steer the relay's sanctions onto another, or get past them?

// TestRep19CopyRefusedAsSpamBansClient: a spammer forges a From: domain
// with a DMARC reject policy. Gmail refuses the message for DMARC, so the
// relay re-sends it encapsulated, as itself; Gmail then refuses the copy
// as spam. The copy carries the spammer's content: the spammer is the
// client to ban, not nobody (the copy was "submitted locally").
func TestRep19CopyRefusedAsSpamBansClient(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("victim@gmail.test", stData, gmailDMARC)
	gmail.refuseCopy("victim@gmail.test", gmailUnsolicited)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{})
	const spammer = "127.0.0.19"

	tx, err := sendFrom(r.addr(), spammer, "ceo@paypal-dmarc.example", []string{"victim@gmail.test"},
		gmailMessage("ceo@paypal-dmarc.example", "phish"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	enc := r.waitEvent("encapsulate", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<victim@gmail.test>" })
	copyID := enc.Get("id")
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == copyID })
	ban := r.waitEvent("ban", 5*time.Second, func(e *maillog.Entry) bool { return true })
	if ban.Get("client") != spammer || ban.Get("rule") != "gmail-unsolicited" {
		t.Errorf("ban line %v; want client=%s rule=gmail-unsolicited", ban.Fields, spammer)
	}
	c, greet, err := dialFrom(r.addr(), spammer)
	if err == nil {
		c.Close()
	}
	if !strings.HasPrefix(greet.String(), "554 ") {
		t.Errorf("the spammer's next connection hears %q; want 554 (banned)", greet)
	}
}
