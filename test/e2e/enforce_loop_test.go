package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestEnforceNoLoop: an upstream that refuses every message with Gmail's
// ban text (Gmail blocking the relay's address does that) must not make
// the relay's own mail feed itself. From an outside review: the failure
// notice to the sender, refused in turn, was encapsulated (it was
// "submitted locally"); that copy, refused, made a failure notice to the
// relay's postmaster, which was encapsulated again: 159 notices in five
// seconds. A message the relay made itself (a notice, a double bounce) is
// never encapsulated and bans nobody; the chain ends with the double
// bounce, dropped when refused.
func TestEnforceNoLoop(t *testing.T) {
	t.Parallel()
	refusal := strings.ReplaceAll(gmailReply("550", "5.7.1", "[{sender} 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked."), "{id}", "e2eloop")
	up := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Capabilities: []string{"8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"},
		EndOfData:    harness.Response{Reply: refusal}})
	r := startEnforcer(t, up.Addr(), enforceOpts{})
	if _, err := sendFrom(r.addr(), "127.0.0.9", "spammer@spam.test", []string{"victim@gmail.test"}, gmailMessage("spammer@spam.test", "loop")); err != nil {
		t.Fatal(err)
	}
	r.waitEvent("ban", 10*time.Second, nil)
	// Long enough for a loop to show: each turn took about 50 ms.
	time.Sleep(4 * time.Second)
	notices, copies := len(r.events("notice")), len(r.events("encapsulate"))
	if notices > 2 || copies > 0 {
		t.Errorf("%d notices and %d encapsulated copies from one refused message; want at most 2 (the sender's, the double bounce) and none", notices, copies)
	}
	if d := r.events("discard"); len(d) != 1 {
		t.Errorf("%d discard lines; want 1: the double bounce, refused too, is dropped and ends the chain", len(d))
	}
	if n := len(up.Transactions()); n > 3 {
		t.Errorf("the upstream saw %d transactions; want at most 3 (the message, its notice, the double bounce)", n)
	}
}
