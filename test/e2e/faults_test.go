package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// startForwarder runs a store-and-forward relay to upstream that retries
// within about a second: back-off 1s to 2s, --poll 1, and a two-second
// response timeout.
func startForwarder(t *testing.T, upstream string) (*relay, string) {
	t.Helper()
	spool := t.TempDir()
	// --no-bounces: these tests count the upstream's connections and the
	// spool's files; notices are tested in ops_*_test.go.
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", upstream, "--poll", "1", "--no-bounces",
		"--response-timeout", "2", "--config", writeConfig(t, ""),
		"--interface", "127.0.0.1", "--spool-dir", spool)
	return r, spool
}

func acceptedTx(f *harness.FakeSMTP) []harness.Transaction {
	var out []harness.Transaction
	for _, tx := range f.Transactions() {
		if tx.Accepted() {
			out = append(out, tx)
		}
	}
	return out
}

// rcptTried counts the RCPT commands the upstream saw for addr.
func rcptTried(f *harness.FakeSMTP, addr string) int {
	n := 0
	for _, tx := range f.Transactions() {
		for _, r := range tx.Rcpts {
			if strings.EqualFold(r.Addr, addr) {
				n++
			}
		}
	}
	return n
}

// TestUpstreamTemporaryFaults: each temporary failure leaves the message
// ready with the recipient deferred and the reply recorded, and a
// "result=deferred" mail-log line; once the upstream behaves, the message
// is delivered exactly once and the spool is empty.
func TestUpstreamTemporaryFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script harness.Script
		// wantReply is the start of the deferred line's reply, and
		// wantText something it must contain.
		wantReply, wantText string
	}{
		{
			name:      "421 at greeting",
			script:    harness.Script{Greeting: harness.Response{Reply: "421 4.3.2 System not accepting network messages", Fault: harness.Close421}},
			wantReply: "421 4.3.2 System not accepting network messages",
		},
		{
			name:      "451 at RCPT",
			script:    harness.Script{Rcpt: harness.Response{Reply: "451 4.3.0 Try again later"}},
			wantReply: "451 4.3.0 Try again later",
		},
		{
			name:      "reset in the middle of DATA",
			script:    harness.Script{Content: harness.Response{After: 200, Fault: harness.Reset}},
			wantReply: "4.4.1 upstream ", // the relay's own account: no server said it
			wantText:  "reset",
		},
		{
			name:      "stall longer than --response-timeout",
			script:    harness.Script{Mail: harness.Response{Delay: 6 * time.Second}},
			wantReply: "4.4.1 upstream ",
			wantText:  "timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, tt.script)
			r, spool := startForwarder(t, fake.Addr())
			body := message(tt.name) + strings.Repeat("A line long enough to fill the content beyond the reset point.\n", 20)
			id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, body).Final)

			d := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
			t.Logf("first attempt: result=%s reply=%q", d.Get("result"), d.Get("reply"))
			if d.Get("result") != "deferred" || !strings.HasPrefix(d.Get("reply"), tt.wantReply) ||
				!strings.Contains(d.Get("reply"), tt.wantText) || d.Get("to") != "<bob@example.net>" {
				t.Errorf("first delivery line: result=%s to=%s reply=%q; want deferred to <bob@example.net> with reply starting %q, containing %q",
					d.Get("result"), d.Get("to"), d.Get("reply"), tt.wantReply, tt.wantText)
			}
			// The envelope records the attempt once it is released; a
			// retry may have claimed it again (.busy) since.
			state, env := waitEnvelope(t, spool, id, 5*time.Second, func(state string, env envelope) bool {
				return env.rcptStatus()["bob@example.net"] != ""
			})
			if state != "envelope" && state != "envelope.busy" {
				t.Fatalf("after a temporary failure the message is %s; want ready (or claimed again)\n%s", state, env)
			}
			if st := env.rcptStatus()["bob@example.net"]; !strings.HasPrefix(st, "deferred bob@example.net "+tt.wantReply) {
				t.Errorf("envelope X-Relaykeeper-Rcpt for bob = %q; want \"deferred bob@example.net %s...\"\n%s", st, tt.wantReply, env)
			}
			if env.get("X-Relaykeeper-Attempts") == "" || env.get("X-Relaykeeper-Attempts") == "0" {
				t.Errorf("envelope X-Relaykeeper-Attempts = %q; want at least 1", env.get("X-Relaykeeper-Attempts"))
			}
			if len(acceptedTx(fake)) != 0 {
				t.Fatalf("the upstream accepted a message while failing")
			}

			fake.SetScript(harness.Script{})
			fake.WaitTransactions(t, 1, 15*time.Second)
			waitFor(15*time.Second, func() bool { return len(acceptedTx(fake)) >= 1 })
			r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool {
				return e.Get("id") == id && e.Get("result") == "sent"
			})
			waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
			time.Sleep(1500 * time.Millisecond) // a poll or two: nothing more may be sent
			acc := acceptedTx(fake)
			if len(acc) != 1 || !slices.Equal(acc[0].To(), []string{"bob@example.net"}) {
				t.Errorf("upstream accepted %d transactions (%v); want 1, for bob@example.net", len(acc), acc)
			}
			if n := len(deliveries(r.events("delivery"), "bob@example.net", "sent")); n != 1 {
				t.Errorf("mail log has %d sent lines for bob; want 1", n)
			}
		})
	}
}

// TestUpstreamDownThenBack: the smarthost is down, the message is
// deferred; once it is back the message is delivered.
func TestUpstreamDownThenBack(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	sink.Stop()
	r, spool := startForwarder(t, sink.Addr())
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("down then back")).Final)

	d := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	if d.Get("result") != "deferred" || !strings.HasPrefix(d.Get("reply"), "4.4.1 upstream connect failed: ") || !strings.Contains(d.Get("reply"), "Connection refused") {
		t.Errorf("delivery while down: result=%s reply=%q; want deferred, \"4.4.1 upstream connect failed: ...Connection refused\"", d.Get("result"), d.Get("reply"))
	}
	state, env := waitEnvelope(t, spool, id, 5*time.Second, func(state string, env envelope) bool {
		return env.rcptStatus()["bob@example.net"] != ""
	})
	if st := env.rcptStatus()["bob@example.net"]; state == "envelope.bad" || !strings.HasPrefix(st, "deferred bob@example.net ") {
		t.Errorf("while down: state %s, X-Relaykeeper-Rcpt %q; want ready and deferred\n%s", state, st, env)
	}

	sink.Restart()
	sink.WaitCount(t, 1, 15*time.Second)
	waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	if got := receivedID(sink.Messages()[0].Data); got != id {
		t.Errorf("sink got message %q; want %s", got, id)
	}
	if n := len(deliveries(r.events("delivery"), "bob@example.net", "sent")); n != 1 {
		t.Errorf("mail log has %d sent lines; want 1", n)
	}
}

// TestUpstreamPermanentFaults: a 5xx moves the message to .envelope.bad
// with each refused recipient's reply recorded, E-MailRelay's Reason
// lines, "result=bounced" mail-log lines, and no further attempt.
func TestUpstreamPermanentFaults(t *testing.T) {
	t.Parallel()
	const unknown = "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown"
	const content = "550 5.7.1 Message content rejected"
	tests := []struct {
		name   string
		script harness.Script
		to     []string
		want   map[string]string // recipient -> the reply recorded
	}{
		{"550 at RCPT", harness.Script{Rcpt: harness.Response{Reply: unknown}},
			[]string{"bob@example.net"}, map[string]string{"bob@example.net": unknown}},
		{"550 at end of data", harness.Script{EndOfData: harness.Response{Reply: content}},
			[]string{"bob@example.net", "carol@example.net"},
			map[string]string{"bob@example.net": content, "carol@example.net": content}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, tt.script)
			r, spool := startForwarder(t, fake.Addr())
			id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", tt.to, message(tt.name)).Final)
			waitSpool(t, spool, 15*time.Second, id+" failed", func(f map[string][]string) bool {
				return slices.Equal(f[id], []string{"content", "envelope.bad"})
			})
			env := readEnvelope(t, filepath.Join(spool, id+".envelope.bad"))
			st := env.rcptStatus()
			for _, to := range tt.to {
				if got, want := st[to], "failed "+to+" "+tt.want[to]; got != want {
					t.Errorf("X-Relaykeeper-Rcpt for %s = %q; want %q", to, got, want)
				}
			}
			if got := env.all("X-MailRelay-To-Remote"); !slices.Equal(got, tt.to) {
				t.Errorf("To-Remote = %q; want %q (failed recipients stay listed)", got, tt.to)
			}
			reasons := env.all("X-MailRelay-Reason")
			codes := env.all("X-MailRelay-ReasonCode")
			if len(reasons) != len(tt.to) || len(codes) != len(tt.to) {
				t.Errorf("%d X-MailRelay-Reason and %d ReasonCode lines; want %d of each\n%s", len(reasons), len(codes), len(tt.to), env)
			}
			for i, reason := range reasons {
				if !strings.Contains(reason, tt.want[tt.to[0]][10:]) || (i < len(codes) && codes[i] != "550") {
					t.Errorf("Reason %q, ReasonCode %q; want the 550 reply's text and 550", reason, codes[i])
				}
			}
			for _, to := range tt.to {
				b := deliveries(r.events("delivery"), to, "bounced")
				if len(b) != 1 || b[0].Get("reply") != tt.want[to] {
					t.Errorf("bounced lines for %s: %v; want one with reply %q", to, b, tt.want[to])
				}
			}
			conns := fake.Connections()
			time.Sleep(2500 * time.Millisecond)
			if got := fake.Connections(); got != conns || len(acceptedTx(fake)) != 0 {
				t.Errorf("after the failure: %d connections more, %d accepted; want none", got-conns, len(acceptedTx(fake)))
			}
			if got := spoolFiles(t, spool)[id]; !slices.Equal(got, []string{"content", "envelope.bad"}) {
				t.Errorf("message %s files = %v; want still content and envelope.bad", id, got)
			}
		})
	}
}

// TestUpstreamMixedRecipients: one recipient accepted, one refused for
// good, one deferred. The accepted one is delivered once and never again;
// the deferred one is retried until accepted; the message ends failed,
// holding only the refused recipient.
func TestUpstreamMixedRecipients(t *testing.T) {
	t.Parallel()
	const ok, bad, later, badReply, laterReply = "ok@example.net", mixedBad, mixedLater, mixedBadReply, mixedLaterReply
	fake := newMixedFake(t)
	r, spool := startForwarder(t, fake.Addr())
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{ok, bad, later}, message("mixed")).Final)

	// Let the greylisted recipient be retried at least twice.
	if !waitFor(20*time.Second, func() bool { return rcptTried(fake, later) >= 3 }) {
		t.Fatalf("%s tried %d times in 20s; want 3", later, rcptTried(fake, later))
	}
	state, env := readAnyEnvelope(t, spool, id)
	if state == "envelope.bad" {
		t.Errorf("message is %s while %s is still deferred; want ready", state, later)
	}
	if got := env.all("X-MailRelay-To-Remote"); !slices.Contains(got, later) || slices.Contains(got, ok) {
		t.Errorf("while deferred: To-Remote = %q; want %s listed and %s gone", got, later, ok)
	}
	fake.Update(func(s *harness.Script) { delete(s.RcptFor, later) })

	waitSpool(t, spool, 15*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
	time.Sleep(1500 * time.Millisecond) // a poll more: nothing else may happen
	env = readEnvelope(t, filepath.Join(spool, id+".envelope.bad"))
	if got := env.all("X-MailRelay-To-Remote"); !slices.Equal(got, []string{bad}) || env.get("X-MailRelay-ToCount") != "1" {
		t.Errorf("failed envelope: To-Remote %q, ToCount %q; want [%s] and 1\n%s", got, env.get("X-MailRelay-ToCount"), bad, env)
	}
	st := env.rcptStatus()
	if !strings.HasPrefix(st[ok], "sent "+ok+" 250") || !strings.HasPrefix(st[later], "sent "+later+" 250") || st[bad] != "failed "+bad+" "+badReply {
		t.Errorf("X-Relaykeeper-Rcpt = %q; want %s and %s sent, %s failed with %q", st, ok, later, bad, badReply)
	}

	if n := rcptTried(fake, ok); n != 1 {
		t.Errorf("upstream saw RCPT %s %d times; want 1", ok, n)
	}
	if n := rcptTried(fake, bad); n != 1 {
		t.Errorf("upstream saw RCPT %s %d times; want 1", bad, n)
	}
	var got [][]string
	for _, tx := range acceptedTx(fake) {
		got = append(got, tx.To())
	}
	if want := [][]string{{ok}, {later}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("upstream accepted messages for %q; want %q", got, want)
	}

	es := r.events("delivery")
	for _, c := range []struct {
		to, result string
		want       int
	}{
		{ok, "sent", 1}, {ok, "deferred", 0}, {bad, "bounced", 1}, {later, "sent", 1},
	} {
		if n := len(deliveries(es, c.to, c.result)); n != c.want {
			t.Errorf("mail log: %d %s lines for %s; want %d", n, c.result, c.to, c.want)
		}
	}
	if d := deliveries(es, later, "deferred"); len(d) < 2 || d[0].Get("reply") != laterReply {
		t.Errorf("mail log: %d deferred lines for %s (first %v); want 2 or more with reply %q", len(d), later, d, laterReply)
	}
}

// TestBackoffAfterSlowAttempt: after an attempt that ends in a timeout, the
// next one waits for the back-off. Every attempt here stalls at MAIL until
// the two-second response timeout, and the back-off is one second, so two
// connections must start at least 2s + 0.9s apart (0.9s: the back-off less
// its 10% jitter). This is a lower bound on the relay's waiting, not a
// speed requirement.
func TestBackoffAfterSlowAttempt(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var starts []time.Time
	fake := harness.NewFakeSMTP(t, harness.Script{
		Mail:     harness.Response{Delay: 10 * time.Second},
		MaxStall: 10 * time.Second,
		Decide: func(stage harness.Stage, _ harness.Transaction, _ string) harness.Response {
			if stage == harness.StageConnect {
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
			}
			return harness.Response{}
		},
	})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--response-timeout", "2", "--config", writeConfig(t, ""), "--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("slow")).Final)
	// Wait on the Decide calls themselves: the fake counts a connection
	// before it calls Decide for it.
	started := func() int { mu.Lock(); defer mu.Unlock(); return len(starts) }
	if !waitFor(15*time.Second, func() bool { return started() >= 2 }) {
		t.Fatalf("upstream saw %d connections in 15s; want a retry", started())
	}
	mu.Lock()
	gap := starts[1].Sub(starts[0])
	mu.Unlock()
	d := deliveries(r.events("delivery"), "bob@example.net", "deferred")
	if len(d) == 0 || !strings.Contains(d[0].Get("reply"), "timeout") {
		t.Fatalf("deferred lines %v; want one for the timeout", d)
	}
	t.Logf("gap between connection starts: %v", gap)
	if gap < 2900*time.Millisecond {
		t.Fatalf("message %s retried %v after the previous attempt began, i.e. about %v after that attempt "+
			"timed out (logged %s); with minimal_backoff_time 1s the wait after the failure must be at least 0.9s",
			id, gap.Round(time.Millisecond), (gap - 2*time.Second).Round(time.Millisecond), d[0].Time.Format("15:04:05.000"))
	}
}
