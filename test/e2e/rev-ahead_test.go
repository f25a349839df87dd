package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAheadRateReplyPaces: three messages go as one batch to a fake Gmail
// that answers the second MAIL, which the relay sends behind the first
// message's final dot (docs/queue.md, "In which order messages go"), with
// its 421 4.7.28 rate reply and closes. That reply is the second message's:
// it is deferred with it, the destination is paced, and no new session is
// opened while the pace suspends it. Before, the reply was lost with the
// session and the relay went on at once on a new one.
func TestAheadRateReplyPaces(t *testing.T) {
	t.Parallel()
	var mails atomic.Int32
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageMail && mails.Add(1) == 2 {
			return harness.Response{Fault: harness.Close421, Reply: gmailRate}
		}
		return harness.Response{}
	}})
	adminPort := harness.FreePort(t)
	r := opsRelay(t, fake.Addr(), "[delivery]\nconnections = 1\npace_suspend = \"60s\"\n", "--admin", fmt.Sprint(adminPort), "--no-bounces")
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
	for i := range 3 {
		mustSend(t, r.addr(), "alice@example.org", []string{fmt.Sprintf("bob%d@gmail.test", i)}, message(fmt.Sprintf("ahead %d", i)))
	}
	if got := adminLine(t, adminPort, "forward"); got != "OK" {
		t.Fatalf("admin forward = %q; want OK", got)
	}
	pace := r.waitEvent("pace", 10*time.Second, nil)
	if pace.Get("verdict") != "pace" {
		t.Errorf("pace line %v; want verdict=pace", pace.Fields)
	}
	deferred := r.waitEvent("delivery", 5*time.Second, func(e *maillog.Entry) bool {
		return e.Get("result") == "deferred"
	})
	if !strings.Contains(deferred.Get("reply"), "4.7.28") {
		t.Errorf("deferral %v; want the 421 4.7.28 the message's MAIL got", deferred.Fields)
	}
	time.Sleep(time.Second) // a new session would be quick
	if n, txs := fake.Connections(), fake.Transactions(); n != 1 || len(txs) != 2 {
		t.Errorf("%d sessions, transactions %v; want 1 session with the first message and the refused MAIL", n, txs)
	}
}
