package e2e

// "Local mail relay with Postfix": the guide's qq_com_limit transport
// (destination_recipient_limit = 3, destination_rate_delay = 10s), with a
// message for more recipients than one delivery takes.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeed20RateDelayRecordsEachDelivery: the recipients of a delivery are
// recorded when that delivery ends, as Postfix's queue manager does, not
// after the rate delay before the message's next delivery. Held back until
// then, a relay killed during the delay sent them a second time when it
// came back.
func TestSeed20RateDelayRecordsEachDelivery(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	transport := writeFile(t, dir, "transport_maps", "qq.com  qq_com_limit:  \n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf(`[routing]
transport_maps = ["hash:%s"]

[transports.qq_com_limit]
nexthop = "[127.0.0.1]:%s"
destination_concurrency_limit = 2
destination_rate_delay = "6s"
destination_recipient_limit = 3
`, transport, portOf(up.Addr())), "--forward-on-disconnect")
	rcpts := []string{"a@qq.com", "b@qq.com", "c@qq.com", "d@qq.com", "e@qq.com"}
	mustSend(t, r.addr(), "testing@zombig.name", rcpts, message("paced"))

	up.WaitTransactions(t, 1, 10*time.Second)
	time.Sleep(time.Second) // into the 6s rate delay before the next delivery
	r.kill()
	r.restart()
	up.WaitTransactions(t, 2, 20*time.Second)
	time.Sleep(time.Second) // a third, duplicate delivery would come now
	txs := up.Transactions()
	var got []string
	for _, tx := range txs {
		for _, rc := range tx.Rcpts {
			got = append(got, rc.Addr)
		}
	}
	slices.Sort(got)
	if len(txs) != 2 || !slices.Equal(got, rcpts) {
		t.Errorf("upstream got %d transactions for %v; want 2 (3 recipients, then 2), each recipient once", len(txs), got)
	}
}
