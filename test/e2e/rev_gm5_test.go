package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevGM5RelayGooglePage: Gmail's replies that gmail-replies.md leaves
// out (internal/enforce/testdata/gmail-replies-page.txt: older wordings,
// a disabled recipient, the relay's TLS, login, address and Workspace SMTP
// relay set-up), given by a fake Gmail to the relay (store and proxy,
// welcomelisted or not) as TestRevPFE3RelayEveryReply gives the
// document's. Each was reported as a reply no rule knows; the relay's own
// faults raised no alert.
func TestRevGM5RelayGooglePage(t *testing.T) {
	t.Parallel()
	relayEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}

// TestRevGM5CompanionGooglePage: the same replies through a real Postfix
// and postfix-enforcer, as TestRevPFE3CompanionEveryReply.
func TestRevGM5CompanionGooglePage(t *testing.T) {
	t.Parallel()
	companionEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}

// TestRevGM5GreetingRateLimitPaces: Gmail refusing the relay at its
// greeting with "an unusual rate of unsolicited mail originating from your
// IP address (IP Netblock) ... temporarily rate limited" has read no
// message, so nobody is banned (f631325); but the relay went on as if
// nothing had been said: no pace line, and every queued message opened a
// session of its own at each retry (12 sessions in 8 seconds for six
// messages), the behaviour that keeps an address rate limited. The
// destination is paced now, as for Gmail's "unusual rate of email": one
// pace line, no session within the suspension, the mail kept, nobody
// banned.
func TestRevGM5GreetingRateLimitPaces(t *testing.T) {
	t.Parallel()
	for name, greeting := range map[string]string{"ip-rate": gmailIPRateLimited, "netblock": gmailNetblock} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
				if st == harness.StageConnect {
					return harness.Response{Fault: harness.Close421, Reply: strings.ReplaceAll(greeting, "{id}", "g1si1")}
				}
				return harness.Response{}
			}})
			cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\npace_suspend = \"30s\"\n"
			r := startEnforcer(t, fake.Addr(), enforceOpts{config: cfg})
			var ids []string
			for i := range 4 {
				from := fmt.Sprintf("a%d@gm5.example", i)
				tx, err := sendFrom(r.addr(), fmt.Sprintf("127.0.3.%d", 10+i), from, []string{"b@gmail.test"}, gmailMessage(from, fmt.Sprint("greeting ", i)))
				if err != nil || tx.Final.code() != 250 {
					t.Fatalf("send %d: %v %+v", i, err, tx)
				}
				ids = append(ids, queuedID(t, tx.Final))
			}
			pace := r.waitEvent("pace", 10*time.Second, nil)
			if pace == nil || pace.Get("destination") != fake.Addr() {
				t.Fatalf("pace line %v; want one for %s", pace, fake.Addr())
			}
			n := fake.Connections()
			time.Sleep(4 * time.Second) // four backoffs' worth
			if m := fake.Connections(); m != n {
				t.Errorf("%d sessions after the rate limit at the greeting; want none while paced", m-n)
			}
			for _, e := range r.events("ban") {
				t.Errorf("a refusal at the greeting banned a client: %v", e.Fields)
			}
			for _, id := range ids {
				if s := msgState(r.spool, id); s != "ready" {
					t.Errorf("message %s is %s; want it kept queued", id, s)
				}
			}
		})
	}
}
