package e2e

import (
	"fmt"
	"slices"
	"sync"

	"github.com/relaykeeper/relaykeeper/test/harness"
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

// rep19Gmail is a fake Gmail that refuses, at the final dot, every
// message with a recipient of refuse (by local part), with that reply.
func rep19Gmail(t *testing.T, refuse map[string]string) *harness.FakeSMTP {
	var mu sync.Mutex
	n := 0
	return harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Capabilities: []string{"SIZE 157286400", "8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageEndOfData || tx.MailFrom == "" || strings.EqualFold(tx.MailFrom, relayAddress) {
				return harness.Response{}
			}
			for _, to := range tx.To() {
				local, _, _ := strings.Cut(to, "@")
				if r, ok := refuse[local]; ok {
					mu.Lock()
					n++
					id := fmt.Sprintf("r19%04dgsm", n)
					mu.Unlock()
					return harness.Response{Reply: strings.ReplaceAll(r, "{id}", id)}
				}
			}
			return harness.Response{}
		}})
}

// TestRep19OneBanPerRefusal: Gmail refuses a message of three recipients
// at the final dot, once, as spam. Its client, and only it, is banned,
// once: one ban line (fail2ban's) and one report to the administrator, not
// one per recipient; the other client's message is sent.
func TestRep19OneBanPerRefusal(t *testing.T) {
	t.Parallel()
	gmail := rep19Gmail(t, map[string]string{"spam": gmailUnsolicited})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{extra: []string{"--mail", "admin@relay.test"}})
	const spammer, innocent = "127.0.0.31", "127.0.0.32"

	tx, err := sendFrom(r.addr(), innocent, "bob@clean.example", []string{"friend@gmail.test"}, gmailMessage("bob@clean.example", "innocent"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("innocent send: %v %+v", err, tx)
	}
	okID := queuedID(t, tx.Final)
	tx, err = sendFrom(r.addr(), spammer, "eve@spam.example", []string{"spam@gmail.test", "spam2@gmail.test", "spam3@gmail.test"}, gmailMessage("eve@spam.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("spam send: %v %+v", err, tx)
	}
	spamID := queuedID(t, tx.Final)
	for _, to := range []string{"<spam@gmail.test>", "<spam2@gmail.test>", "<spam3@gmail.test>"} {
		r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == spamID && e.Get("to") == to })
	}
	if e := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == okID }); e.Get("result") != "sent" {
		t.Errorf("the innocent client's message: %v; want sent", e.Fields)
	}
	r.waitEvent("ban", 5*time.Second, nil)
	waitFor(5*time.Second, func() bool { return len(rep19Txs(gmail, rep19ToAdmin)) > 0 })
	time.Sleep(time.Second) // time for more, if any
	bans := r.events("ban")
	if len(bans) != 1 || bans[0].Get("client") != spammer {
		t.Errorf("ban lines %v; want one, for %s", fieldsOf(bans), spammer)
	}
	if n := len(rep19Txs(gmail, rep19ToAdmin)); n != 1 {
		t.Errorf("the administrator got %d ban reports for one refusal; want 1", n)
	}
}

func rep19ToAdmin(tx harness.Transaction) bool {
	return slices.Contains(tx.To(), "admin@relay.test") && strings.Contains(string(tx.Data), "banned ")
}

// rep19Txs are the fake's transactions that keep says to keep.
func rep19Txs(f *harness.FakeSMTP, keep func(harness.Transaction) bool) []harness.Transaction {
	var out []harness.Transaction
	for _, tx := range f.Transactions() {
		if keep(tx) {
			out = append(out, tx)
		}
	}
	return out
}
