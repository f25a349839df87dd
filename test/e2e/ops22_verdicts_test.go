package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps22SpamVerdictsPerMessage: Gmail's spam reply at the final dot of
// one message to 6 Gmail recipients is one ban verdict in
// relaykeeper_upstream_verdicts_total. It counted 6, one per recipient,
// and the shipped alert RelaykeeperSpamVerdicts ("the upstream called
// more than 5 messages spam in the last hour") fired for that one message.
// Its 6 refused recipients still count 6 5xx replies, as 6 delivery lines.
func TestOps22SpamVerdictsPerMessage(t *testing.T) {
	t.Parallel()
	spam := "550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely unsolicited mail. " +
		"To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. Please visit\r\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n550 5.7.1 for more information. " +
		"a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp"
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData && tx.MailFrom == "shop@example.com" {
			return harness.Response{Reply: spam}
		}
		return harness.Response{}
	}})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startEnforcer(t, up.Addr(), enforceOpts{extra: []string{"--admin-http", httpAddr}})
	harness.WaitPort(t, httpAddr, 5*time.Second)
	var rcpts []string
	for i := range 6 {
		rcpts = append(rcpts, fmt.Sprintf("reader%d@gmail.com", i))
	}
	if _, err := sendFrom(r.addr(), "127.0.0.3", "shop@example.com", rcpts, message("cheap pills")); err != nil {
		t.Fatal(err)
	}
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		body = scrape(t, "http://"+httpAddr+"/metrics")
		if series(body, `relaykeeper_deliveries_total{destination="gmail.com",result="bounced"}`) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := series(body, `relaykeeper_upstream_verdicts_total{class="5xx",verdict="ban"}`); got != 1 {
		t.Errorf("ban verdicts after one spam refusal of 6 recipients = %v; want 1\n%s", got,
			grepLines(body, "relaykeeper_upstream_verdicts_total"))
	}
	if got := series(body, `relaykeeper_upstream_replies_total{class="5xx"}`); got != 6 {
		t.Errorf("5xx replies = %v; want 6, one per refused recipient", got)
	}
	if !strings.Contains(body, "relaykeeper_up 1") {
		t.Errorf("no relaykeeper_up in the scrape")
	}
}
