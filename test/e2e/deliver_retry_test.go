package e2e

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// faultOnce is a fake upstream that answers the first session with fault
// at stage, and every later one healthily.
func faultOnce(t *testing.T, stage harness.Stage, fault harness.Response) *harness.FakeSMTP {
	var sessions atomic.Int32
	return harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageConnect {
			sessions.Add(1)
		}
		if st == stage && sessions.Load() == 1 {
			return fault
		}
		return harness.Response{}
	}})
}

var retryFaults = []struct {
	name  string
	stage harness.Stage
	fault harness.Response
}{
	{"421 at the greeting", harness.StageConnect, harness.Response{Fault: harness.Close421, Reply: "421 4.3.2 Service shutting down"}},
	// Postfix's smtp_skip_5xx_greeting (on by default): the smarthost
	// refused the relay, not the message, which waits.
	{"554 at the greeting", harness.StageConnect, harness.Response{Reply: "554 5.7.1 Relay not allowed from this address yet"}},
	{"451 to the final dot", harness.StageEndOfData, harness.Response{Reply: "451 4.3.0 Mail server temporarily rejected message."}},
	{"reset mid-DATA", harness.StageContent, harness.Response{Fault: harness.Reset, After: 10}},
}

// TestRetryAfterTemporaryFault: after a 421 greeting, a 451 to the final
// dot, or a reset in the middle of the content, the message is retried and
// delivered, and the retry waited minimal_backoff_time (here 2s, so that
// the test is quick) and not much more: well within 90s.
func TestRetryAfterTemporaryFault(t *testing.T) {
	t.Parallel()
	for _, f := range retryFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fake := faultOnce(t, f.stage, f.fault)
			r := opsRelay(t, fake.Addr(), "[delivery]\nminimal_backoff_time = \"2s\"\nmaximal_backoff_time = \"4s\"\n",
				"--forward-on-disconnect", "--no-bounces")
			tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("retry "+f.name))
			id := queuedID(t, tx.Final)
			deferred := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
				return e.Get("id") == id && e.Get("result") == "deferred"
			})
			if f.fault.Reply != "" && f.stage == harness.StageConnect && !strings.Contains(deferred.Get("reply"), f.fault.Reply) {
				t.Errorf("deferral reply %q; want it to name the greeting %q", deferred.Get("reply"), f.fault.Reply)
			}
			sent := r.waitEvent("delivery", 90*time.Second, func(e *maillog.Entry) bool {
				return e.Get("id") == id && e.Get("result") == "sent"
			})
			wait := sent.Time.Sub(deferred.Time)
			if wait < 1700*time.Millisecond || wait > 30*time.Second {
				t.Errorf("retry came %v after the deferral (%v); want minimal_backoff_time, 2s less at most a tenth", wait, deferred.Fields)
			}
			if got := fake.Transactions(); len(got) == 0 || !got[len(got)-1].Accepted() {
				t.Errorf("upstream transactions %v; want the last accepted", got)
			}
			checkSpoolEmpty(t, r.spool)
		})
	}
}

// TestRetryDefaultWithinAMinute: with no configuration at all, a deferred
// message's next attempt is due within a minute (minimal_backoff_time's
// default, 60s less up to a tenth of jitter), and `queue list` says when.
func TestRetryDefaultWithinAMinute(t *testing.T) {
	t.Parallel()
	fake := faultOnce(t, harness.StageEndOfData, harness.Response{Reply: "451 4.3.0 Mail server temporarily rejected message."})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect", "--no-bounces")
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("default back-off"))
	id := queuedID(t, tx.Final)
	deferred := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("result") == "deferred"
	})
	var m opsMessage
	waitFor(5*time.Second, func() bool {
		for _, x := range opsList(t, r.spool).Messages {
			if x.ID == id && !x.NextAttempt.IsZero() {
				m = x
				return true
			}
		}
		return false
	})
	due := m.NextAttempt.Sub(deferred.Time)
	if due < 53*time.Second || due > 61*time.Second {
		t.Errorf("next attempt %v after the deferral; want 54s..60s (the default minimal_backoff_time)", due)
	}
	out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", r.spool)
	if want := "next attempt " + m.NextAttempt.UTC().Format("2006-01-02 15:04:05"); !strings.Contains(out, want) {
		t.Errorf("queue list:\n%s\nwant %q", out, want)
	}
}
