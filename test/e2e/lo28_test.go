package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo28BannedThenWelcomedByName: a client banned before the
// administrator welcomelisted it by host name was still refused at connect
// (554, "banned"), and its mail held: the connect-time check and the hold
// knew only the address, and a ban made before an address was listed is
// ignored while it is. A host-name entry holds the same way, in store and
// forward and in proxy mode; a banned client whose name the list does not
// match is refused as before.
func TestLo28BannedThenWelcomedByName(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{false, true} {
		name := map[bool]string{false: "store", true: "proxy"}[proxy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			partner := map[bool]string{false: "127.0.28.11", true: "127.0.28.12"}[proxy]
			stranger := map[bool]string{false: "127.0.28.21", true: "127.0.28.22"}[proxy]
			rev := func(ip string) string {
				p := strings.Split(ip, ".")
				return p[3] + "." + p[2] + "." + p[1] + "." + p[0] + ".in-addr.arpa."
			}
			dns := harness.StartDNS(t, rev(partner)+"  PTR  mx.partner28.test.\nmx.partner28.test.  A  "+partner+"\n"+
				rev(stranger)+"  PTR  mx.stranger28.test.\nmx.stranger28.test.  A  "+stranger+"\n")
			gmail := newFakeGmail(t)
			dir := t.TempDir()
			bans := writeFile(t, dir, "bans", partner+" until=2099-01-01T00:00:00Z reason=\"spam before the list\"\n"+
				stranger+" until=2099-01-01T00:00:00Z reason=\"spam\"\n", 0o644)
			cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + bans + "\"\n"
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, config: cfg, welcome: `^mx\.partner28\.test$` + "\n",
				extra: []string{"--client-names-server", dns.Addr()}})
			c, g, err := dialFrom(r.addr(), stranger)
			if err == nil {
				c.Close()
			}
			if g.code() != 554 {
				t.Errorf("banned %s, not listed, greeted %v (%v); want 554", stranger, g, err)
			}
			rcpt := "partner-" + name + "@gmail.test"
			tx, err := sendFrom(r.addr(), partner, "alice@partner28.example", []string{rcpt}, gmailMessage("alice@partner28.example", "lo28 "+name))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("banned %s welcomelisted by name: greeting %v, heard %v (%v); want 220 and 250", partner, tx.Greeting, heardReply(tx), err)
			}
			if !waitFor(20*time.Second, func() bool {
				for _, tx := range gmail.Transactions() {
					if tx.Accepted() && strings.Join(tx.To(), ",") == rcpt {
						return true
					}
				}
				return false
			}) {
				t.Errorf("the welcomelisted client's message was not delivered; holds: %v", fieldsOf(r.events("hold")))
			}
			if h := r.events("hold"); len(h) != 0 {
				t.Errorf("holds %v; want none", fieldsOf(h))
			}
		})
	}
}

// TestLo28EncapsulateMoreRecipientsThanLimit: [enforce]
// encapsulate_rate_limit counts copies, one per refused recipient, in a
// bucket of that many an hour. Through a proxy, Gmail's refusal at the
// final dot is one refusal for all of a message's recipients, all copies
// or none: one refused for more recipients than the limit never fitted in
// the bucket, however long its client had been quiet, so it was never
// encapsulated, and the log said the limit was "reached" with no copy
// made. A client whose bucket is full now has it encapsulated, every copy;
// the copies past the limit are owed, so that its next refused message
// goes back to its sender (copies an hour stay at the limit on average).
func TestLo28EncapsulateMoreRecipientsThanLimit(t *testing.T) {
	t.Parallel()
	const partner = "127.0.28.31"
	// Gmail refuses the partner's every message as spam at the final
	// dot, for all its recipients at once; the copies go.
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
			if stage == stData && tx.MailFrom != relayAddress && tx.MailFrom != "" {
				return harness.Response{Reply: gmailUnsolicited}
			}
			return harness.Response{}
		}})
	rcpts := []string{"r1@gmail.test", "r2@gmail.test", "r3@gmail.test"}
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, welcome: partner + "\n",
		config: "[enforce]\nban_delay = \"0s\"\nencapsulate_rate_limit = 2\n"})
	tx, err := sendFrom(r.addr(), partner, "alice@partner28.example", rcpts, gmailMessage("alice@partner28.example", "lo28 many"))
	if err != nil || tx.Final.code() != 250 {
		t.Errorf("3 recipients, limit 2, client quiet till now: heard %v (%v); want 250 (encapsulated); events %v",
			heardReply(tx), err, fieldsOf(enforceEvents(r, partner)))
	}
	if got := len(r.events("encapsulate")); got != 3 {
		t.Fatalf("%d copies (events %v); want 3", got, fieldsOf(enforceEvents(r, partner)))
	}
	// The bucket owes a copy now: the next refusal goes to its sender.
	tx, err = sendFrom(r.addr(), partner, "alice@partner28.example", rcpts[:1], gmailMessage("alice@partner28.example", "lo28 next"))
	if err != nil || tx.Final.code() != 550 {
		t.Errorf("the next message, the bucket owing a copy: heard %v (%v); want Gmail's 550", heardReply(tx), err)
	}
	if got := len(r.events("encapsulate")); got != 3 {
		t.Errorf("%d copies in all; want still 3 (%v)", got, fieldsOf(enforceEvents(r, partner)))
	}
}
