package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud24DefaultPacing: issue 4 asks for the per-destination pacing "per
// transport and as defaults". [routing] destination_rate_delay (Postfix's
// default_destination_rate_delay) paces a destination that no transport of
// its own paces: three messages to a relay:[host]:port route are delivered
// at least the delay apart, and so are three to the forward.to smarthost
// with no routing table at all. initial_destination_concurrency is a
// default too, and a negative one is refused with the file and line.
func TestAud24DefaultPacing(t *testing.T) {
	t.Parallel()
	hop := harness.NewFakeSMTP(t, harness.Script{})
	cfg := writeConfig(t, fmt.Sprintf(`
[routing]
transport_maps = ["inline:{ paced.example=relay:[%s]:%s }"]
destination_rate_delay = "700ms"
initial_destination_concurrency = 1
`, hostOf(hop.Addr()), portOf(hop.Addr())))
	checkPaced(t, hop, "paced.example", "--forward-on-disconnect", "--config", cfg)

	// The default paces the smarthost too (Postfix's relayhost), with no
	// routing table at all.
	smarthost := harness.NewFakeSMTP(t, harness.Script{})
	cfg = writeConfig(t, "[routing]\ndestination_rate_delay = \"700ms\"\n")
	checkPaced(t, smarthost, "smarthost.example", "--forward-to", smarthost.Addr(), "--forward-on-disconnect", "--config", cfg)

	bad := writeConfig(t, "[routing]\ninitial_destination_concurrency = -1\n")
	out, code := run(harness.Binary(t), "--config", bad, "--as-server", "--spool-dir", t.TempDir())
	if code != 2 || !strings.Contains(out, bad+":") || !strings.Contains(out, "routing.initial_destination_concurrency: -1 is negative") {
		t.Errorf("a negative initial_destination_concurrency: exit %d, %q; want 2 naming the file and line", code, out)
	}
}

// checkPaced starts a relay with args, sends three messages to u0, u1 and
// u2 at domain, which hop receives, and checks that their delivery lines
// are at least 700ms apart.
func checkPaced(t *testing.T, hop *harness.FakeSMTP, domain string, args ...string) {
	t.Helper()
	r := startRelay(t, "127.0.0.1", append([]string{"--as-server", "--no-bounces", "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir()}, args...)...)
	for i := range 3 {
		mustSend(t, r.addr(), "alice@example.org", []string{fmt.Sprintf("u%d@%s", i, domain)}, message("paced"))
	}
	hop.WaitTransactions(t, 3, 20*time.Second)
	var first, last time.Time
	for i := range 3 {
		to := fmt.Sprintf("<u%d@%s>", i, domain)
		e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == to })
		if first.IsZero() || e.Time.Before(first) {
			first = e.Time
		}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	if gap := last.Sub(first); gap < 1300*time.Millisecond {
		t.Errorf("three deliveries to %s within %v; want them at least 700ms apart ([routing] destination_rate_delay)", domain, gap)
	}
}

// TestAud24RoutedDebugPeerAndLogName: debug_peer_list traces the whole
// conversation with a listed upstream also when routing (transport_maps,
// MX) chose it, not only with forward.to; an unlisted upstream is not
// traced. A transport's log_name (Postfix's -o syslog_name) names it on its
// delivery lines; a delivery through a transport without one has no
// transport= key.
func TestAud24RoutedDebugPeerAndLogName(t *testing.T) {
	t.Parallel()
	hopA := harness.NewFakeSMTP(t, harness.Script{})
	hopB := harness.NewFakeSMTP(t, harness.Script{})
	dns := harness.StartDNS(t, "hop-a.test. A 127.0.0.1\nhop-b.test. A 127.0.0.1\n")
	cfg := writeConfig(t, fmt.Sprintf(`
[log]
debug_peers = ["hop-a.test"]

[routing]
dns_server = "%s"
transport_maps = ["inline:{ a.example=zombig_name, b.example=relay:[hop-b.test]:%s }"]

[transports.zombig_name]
nexthop = "[hop-a.test]:%s"
log_name = "relay-zombig-name"
`, dns.Addr(), portOf(hopB.Addr()), portOf(hopA.Addr())))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@a.example"}, message("to a"))
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@b.example"}, message("to b"))
	hopA.WaitTransactions(t, 1, 10*time.Second)
	hopB.WaitTransactions(t, 1, 10*time.Second)

	a := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<bob@a.example>" })
	if a.Get("result") != "sent" || a.Get("transport") != "relay-zombig-name" {
		t.Errorf("delivery through zombig_name = %v; want sent with transport=relay-zombig-name", a.Fields)
	}
	b := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<carol@b.example>" })
	if b.Get("result") != "sent" || b.Get("transport") != "" {
		t.Errorf("delivery through relay = %v; want sent, no transport key", b.Fields)
	}
	log := r.stderr()
	if !strings.Contains(log, `debug_peer=hop-a.test[127.0.0.1:`+portOf(hopA.Addr())+`] dir=> line="RCPT TO:<bob@a.example>"`) {
		t.Errorf("no trace of the session with hop-a.test, a debug peer reached by transport_maps:\n%s", log)
	}
	if strings.Contains(log, "debug_peer=hop-b.test") {
		t.Errorf("the session with hop-b.test, not a debug peer, was traced:\n%s", log)
	}
}

// TestAud24FailedLastReply: queue list's "last reply" of a failed message
// is what it failed for. One recipient is refused for good, another is put
// off and then delivered: the message ends failed, and its last reply is
// the refusal, not the deferral of the recipient since delivered.
func TestAud24FailedLastReply(t *testing.T) {
	t.Parallel()
	const bad, later, badReply, laterReply = mixedBad, mixedLater, mixedBadReply, mixedLaterReply
	fake := newMixedFake(t)
	r, spool := startForwarder(t, fake.Addr())
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{bad, later}, message("mixed")).Final)
	if !waitFor(20*time.Second, func() bool { return rcptTried(fake, later) >= 1 }) {
		t.Fatalf("%s not tried in 20s", later)
	}
	fake.Update(func(s *harness.Script) { delete(s.RcptFor, later) })
	waitSpool(t, spool, 20*time.Second, id+" failed", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.bad"})
	})
	out, code := run(harness.Binary(t), "queue", "list", "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, "last reply: "+badReply) || strings.Contains(out, "last reply: "+laterReply) {
		t.Errorf("queue list: exit %d\n%s\nwant the failed message's last reply to be %q", code, out, badReply)
	}
}

// The recipients of newMixedFake: one refused for good, one put off.
const (
	mixedBad, mixedLater = "bad@example.net", "later@example.net"
	mixedBadReply        = "550 5.1.1 <bad@example.net>: Recipient address rejected: User unknown"
	mixedLaterReply      = "451 4.2.0 <later@example.net>: Recipient address rejected: Greylisted"
)

// newMixedFake is an upstream that refuses mixedBad for good and puts
// mixedLater off (until the test changes its script), and takes the rest.
func newMixedFake(t *testing.T) *harness.FakeSMTP {
	return harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		mixedBad:   {Reply: mixedBadReply},
		mixedLater: {Reply: mixedLaterReply},
	}})
}
