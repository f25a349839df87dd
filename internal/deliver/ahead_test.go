package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// queueMore queues one more message for rcpt.
func queueMore(t *testing.T, sp *spool.Spool, rcpt string) {
	t.Helper()
	queueNotify(t, sp, rcpt, "")
}

// TestAheadBatch: a batch's next message has its MAIL, RCPT and DATA sent
// with the last one's final dot, in one write, and every message is
// delivered once; a session that may carry one message more begins none
// (it would be closed with the transaction begun).
func TestAheadBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perConn   int
		wantAhead bool
	}{{"batch", 100, true}, {"one message per session", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t)
			sp, s, _, _ := setup(t, up.addr, "m0@example.net")
			for i := 1; i < 6; i++ {
				queueMore(t, sp, "m"+string(rune('0'+i))+"@example.net")
			}
			s.opts.MessagesPerConnection = tc.perConn
			sum, err := s.RunOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if sum.Sent != 6 || len(up.got()) != 6 {
				t.Fatalf("summary %+v, upstream got %v; want 6 sent, once each", sum, up.got())
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			ahead := 0
			for _, r := range up.reads {
				if strings.Contains(r, "\r\n.\r\nMAIL FROM:<a@example.com>") {
					ahead++
				}
			}
			if (ahead > 0) != tc.wantAhead {
				t.Errorf("%d reads held a final dot and the next MAIL; want some: %v", ahead, tc.wantAhead)
			}
			if up.txs != 6 {
				t.Errorf("upstream transactions = %d; want 6", up.txs)
			}
		})
	}
}

// listedUnderWay is a scheduler with one message Ready, id, and its
// dispatcher after a listing made while the message's attempt is under
// way (before its outcome is settled).
func listedUnderWay(t *testing.T) (*Scheduler, *dispatcher, string) {
	t.Helper()
	up := startUpstream(t)
	_, s, _, id := setup(t, up.addr, "m0@example.net")
	d := newDispatcher()
	d.inflight[id] = true
	s.scan(d, false, false)
	return s, d, id
}

// TestRelistedWhileUnderWay: a listing that finds a message Ready while
// its attempt is still under way (an administrator renamed it back from
// failed before the outcome came in: E-MailRelay's unfail-all, then
// SIGHUP) leaves it due once the outcome is in, not forgotten until the
// next listing. A clean-clone CI run lost TestUnfailThenSighup's message
// to this race.
func TestRelistedWhileUnderWay(t *testing.T) {
	s, d, id := listedUnderWay(t)
	if _, ok := d.known[id]; ok {
		t.Fatalf("a message under way is known to the listing")
	}
	s.settle(d, outcome{id: id, failed: 1}) // failed: no next attempt
	if _, ok := d.known[id]; !ok {
		t.Errorf("after the outcome, the message Ready on disk is not known; want it due")
	}
}

// TestSkippedNotRelisted: a message whose claim failed (locked by another
// process) is Ready all along, so a listing during its attempt sees it;
// its outcome must not make it due at once, or the workers would try the
// claim over and over (a clean-clone CI run crawled so).
func TestSkippedNotRelisted(t *testing.T) {
	s, d, id := listedUnderWay(t)
	s.settle(d, outcome{id: id, skipped: true})
	if _, ok := d.known[id]; ok {
		t.Errorf("a skipped message is due at once; want it left for the next listing")
	}
}
