package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestEnforceNoDoubleAction: a 421 4.7.28 deferral that Gmail repeats on
// every retry (with a new session id each time) is acted on once for the
// message and recipient, also across a restart of the relay. The reply
// filter is a file without rules, so that the 421s stay temporary (the
// built-in one makes them 554, and nothing is retried). The netblock text
// bans the client (its message is held; released, it is retried); Gmail's
// DKIM-domain variant, which no rule knows, is reported.
func TestEnforceNoDoubleAction(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	// A deferral no rule knows (Gmail's DKIM-domain rate limit was one,
	// before it got its block-domain rule).
	dkim := gmailReply("421", "4.7.28", "Gmail has detected something no rule of relaykeeper knows about [dkim.example 30]. ... temporarily rate limited. ...")
	gmail.answer("nb@gmail.test", stData, gmailNetblock)
	gmail.answer("dkim@gmail.test", stData, dkim)
	filter := writeFile(t, t.TempDir(), "reply_filter", "# no rewriting: Gmail's replies reach the client as they are\n", 0o644)
	cfg := "[enforce]\nban_delay = \"0s\"\nreply_filter = \"" + filter + "\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg, extra: []string{"--poll", "1"}})
	const reported, banned = "127.0.0.8", "127.0.0.9"

	tx, err := sendFrom(r.addr(), reported, "a@dkim.example", []string{"dkim@gmail.test"}, gmailMessage("a@dkim.example", "dkim"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	ma := queuedID(t, tx.Final)
	tx, err = sendFrom(r.addr(), banned, "b@netblock.example", []string{"nb@gmail.test"}, gmailMessage("b@netblock.example", "netblock"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	mb := queuedID(t, tx.Final)

	r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == ma })
	r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == mb })
	r.waitEvent("hold", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == mb })
	waitFor(5*time.Second, func() bool { return msgState(r.spool, mb) == "held" })
	if s := msgState(r.spool, mb); s != "held" {
		t.Fatalf("the banned client's message is %s; want held", s)
	}
	tries := func(rcpt string, n int) {
		t.Helper()
		if !waitFor(15*time.Second, func() bool { return rcptTried(gmail.FakeSMTP, rcpt) >= n }) {
			t.Fatalf("Gmail saw %s %d times after 15s; want %d", rcpt, rcptTried(gmail.FakeSMTP, rcpt), n)
		}
	}
	tries("dkim@gmail.test", 3)
	if code, out, errOut := runCLI(t, "queue", "--spool-dir", r.spool, "release", mb); code != 0 {
		t.Fatalf("queue release: exit %d %q %q", code, out, errOut)
	}
	tries("nb@gmail.test", 3)

	r.stop(15 * time.Second)
	na, nb := rcptTried(gmail.FakeSMTP, "dkim@gmail.test"), rcptTried(gmail.FakeSMTP, "nb@gmail.test")
	r.restart()
	tries("dkim@gmail.test", na+1)
	tries("nb@gmail.test", nb+1)

	gmail.answer("dkim@gmail.test", stData, "")
	gmail.answer("nb@gmail.test", stData, "")
	if !waitFor(15*time.Second, func() bool { return msgState(r.spool, ma) == "gone" && msgState(r.spool, mb) == "gone" }) {
		t.Fatalf("after Gmail accepts: %s %s, %s %s; want both delivered", ma, msgState(r.spool, ma), mb, msgState(r.spool, mb))
	}
	for _, c := range []struct {
		ip, id, rcpt, want string
	}{{reported, ma, "dkim@gmail.test", "report"}, {banned, mb, "nb@gmail.test", "ban"}} {
		if es := enforceEvents(r, c.ip); actionOf(es) != c.want {
			t.Errorf("events about %s: %v; want exactly one %s", c.ip, fieldsOf(es), c.want)
		}
		deferred := 0
		for _, e := range deliveries(r.events("delivery"), c.rcpt, "deferred") {
			if e.Get("id") == c.id {
				deferred++
			}
		}
		if deferred < 3 {
			t.Errorf("%s: %d deferred deliveries; want at least 3 (retries before and after the restart)", c.id, deferred)
		}
		t.Logf("%s to %s: %d refusals by Gmail, one %s", c.id, c.rcpt, deferred, c.want)
	}
	if hs := eventsWith(r, "hold", "id", mb); len(hs) != 1 {
		t.Errorf("hold lines for %s: %v; want one", mb, fieldsOf(hs))
	}
}
