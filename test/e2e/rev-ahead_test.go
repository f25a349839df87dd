package e2e

import (
	"fmt"
	"net"
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

// TestAheadStopMidBatch: the relay is stopped (SIGTERM, and SIGKILL) while
// the upstream holds back its reply to a batch's first final dot, behind
// which the second message's MAIL, RCPT and DATA went. The upstream never
// gets content nobody meant: the second transaction is cut before any,
// every transaction it accepted has its own message whole, and after a
// restart every message is delivered (after SIGKILL the first one may be
// twice; after SIGTERM it ends within the grace, and nothing is).
func TestAheadStopMidBatch(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"TERM", "KILL"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			var dots atomic.Int32
			stalled := make(chan struct{})
			fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
				if st == harness.StageEndOfData && dots.Add(1) == 1 {
					close(stalled)
					return harness.Response{Delay: 3 * time.Second}
				}
				return harness.Response{}
			}})
			adminPort := harness.FreePort(t)
			r := opsRelay(t, fake.Addr(), "[delivery]\nconnections = 1\n[smtp]\nshutdown_grace = \"10s\"\n",
				"--admin", fmt.Sprint(adminPort), "--no-bounces", "--poll", "3600")
			harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
			for i := range 3 {
				mustSend(t, r.addr(), "alice@example.org", []string{fmt.Sprintf("bob%d@example.net", i)}, message(fmt.Sprintf("stop %d", i)))
			}
			go func() {
				// The reply comes when the run ends, or never: the relay
				// is stopped meanwhile.
				if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort)); err == nil {
					fmt.Fprintf(c, "forward\r\n")
					c.SetReadDeadline(time.Now().Add(15 * time.Second))
					c.Read(make([]byte, 512))
					c.Close()
				}
			}()
			select {
			case <-stalled:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream saw no final dot in 10s")
			}
			time.Sleep(200 * time.Millisecond) // the next commands are in, behind the dot
			if sig == "TERM" {
				r.stop(15 * time.Second)
			} else {
				r.kill()
			}
			r.restart()
			harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
			got := map[string]int{}
			waitFor(20*time.Second, func() bool {
				adminLine(t, adminPort, "forward")
				got = map[string]int{}
				for _, tx := range fake.Transactions() {
					if tx.Accepted() {
						for _, a := range tx.To() {
							got[a]++
						}
					}
				}
				return len(got) == 3
			})
			// The first session ends when the upstream, after its stall,
			// has answered the dot and found the relay gone.
			var first []harness.Transaction
			waitFor(10*time.Second, func() bool {
				first = nil
				for _, tx := range fake.Transactions() {
					if tx.Conn == 1 {
						first = append(first, tx)
					}
				}
				return len(first) >= 2
			})
			if len(first) != 2 || strings.HasPrefix(first[1].DataReply, "354") && first[1].Reply != "" {
				t.Errorf("first session: %d transactions; want 2, the second begun behind the first dot and cut before its own", len(first))
				for _, tx := range first {
					t.Logf("first session: to %v, DATA %q, final reply %q, %d bytes", tx.To(), tx.DataReply, tx.Reply, len(tx.Data))
				}
			}
			got = map[string]int{}
			for _, tx := range fake.Transactions() {
				if tx.Accepted() {
					for _, a := range tx.To() {
						got[a]++
					}
				}
			}
			twice := 0
			for i := range 3 {
				a := fmt.Sprintf("bob%d@example.net", i)
				if n := got[a]; n < 1 || n > 2 {
					t.Errorf("%s delivered %d times; want once (twice if its dot was in when the relay stopped)", a, n)
				} else if n == 2 {
					twice++
				}
			}
			if twice > 1 || (sig == "TERM" && twice > 0) {
				t.Errorf("%d messages delivered twice; want none after SIGTERM (the message under way ends within the grace), one at most after SIGKILL", twice)
			}
			for _, tx := range fake.Transactions() {
				to := tx.To()
				if !tx.Accepted() || len(to) != 1 {
					continue
				}
				n := strings.TrimSuffix(strings.TrimPrefix(to[0], "bob"), "@example.net")
				if !strings.Contains(string(tx.Data), "stop "+n+"\r\n") {
					t.Errorf("the upstream accepted for %s %d bytes not its own message", to[0], len(tx.Data))
				}
			}
		})
	}
}
