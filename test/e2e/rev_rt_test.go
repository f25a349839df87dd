package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevRtHopcount: a message with 49 Received: headers (50 hops with
// the relay's own) is refused at the final dot with Postfix's "554 5.4.0
// Error: too many hops" (hopcount_limit); one with 48 is accepted.
func TestRevRtHopcount(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	if _, final := opsSend(t, r.addr(), "client.example", "<a@example.org>", []string{"<b@example.net>"}, hops(48)); final.code() != 250 {
		t.Errorf("48 Received headers: final reply %q; want 250", final)
	}
	_, final := opsSend(t, r.addr(), "client.example", "<a@example.org>", []string{"<b@example.net>"}, hops(49))
	if final.String() != "554 5.4.0 Error: too many hops" {
		t.Errorf("49 Received headers and ours: final reply %q; want 554 5.4.0 Error: too many hops", final)
	}
}

// hops is a message with n Received: header fields.
func hops(n int) string {
	return strings.Repeat("Received: from a.example by b.example; Sat, 5 Dec 2026 00:00:00 +0000\n", n) + message("hops")
}

// TestRevRtLoop: a relay whose smarthost leads back to itself (here
// through a port forwarder) took its own message again and again, one
// more Received header each turn, forever: with --forward-on-disconnect
// as fast as it could. The hop count ends the loop: the relay refuses its
// own copy after 50 hops, and the delivery fails.
func TestRevRtLoop(t *testing.T) {
	t.Parallel()
	var target atomic.Value
	loop := harness.ServeTCP(t, func(c net.Conn) {
		addr, _ := target.Load().(string)
		u, err := net.Dial("tcp4", addr)
		if err != nil {
			return
		}
		defer u.Close()
		go func() { io.Copy(u, c); u.Close(); c.Close() }()
		io.Copy(c, u)
	})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir(), "--forward-to", loop)
	target.Store(r.addr())
	// The message has been around already: each turn takes the relay's
	// connection cache time (2.5 s), so 50 turns would be a long test.
	if _, final := opsSend(t, r.addr(), "client.example", "<alice@example.org>", []string{"<bob@example.net>"}, hops(44)); final.code() != 250 {
		t.Fatalf("final reply %q; want 250", final)
	}
	e := r.waitEvent("delivery", 30*time.Second, func(e *maillog.Entry) bool { return e.Get("result") == "bounced" || e.Get("result") == "failed" })
	if !strings.Contains(e.Get("reply"), "5.4.0") || !strings.Contains(e.Get("reply"), "too many hops") {
		t.Errorf("the looping message failed with %v; want the relay's own 554 5.4.0 too many hops", e.Fields)
	}
	if n := len(r.events("accept")); n != 5 {
		t.Errorf("%d accepts; want 5: the loop ended at 50 hops", n)
	}
}

// TestRevRt452: a smarthost that takes two recipients a transaction and
// answers "452 4.5.3 Too many recipients" to the others: those are
// deferred, not bounced, and all five arrive in the end (RFC 5321 section
// 4.5.3.1.10).
func TestRevRt452(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if stage == harness.StageRcpt && len(tx.To()) >= 2 {
			return harness.Response{Reply: "452 4.5.3 Too many recipients"}
		}
		return harness.Response{}
	}})
	cfg := writeConfig(t, "")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--poll", "1", "--interface", "127.0.0.1",
		"--config", cfg, "--spool-dir", t.TempDir(), "--forward-to", up.Addr())
	rcpts := []string{"r1@example.net", "r2@example.net", "r3@example.net", "r4@example.net", "r5@example.net"}
	mustSend(t, r.addr(), "alice@example.org", rcpts, message("many"))
	got := map[string]bool{}
	waitFor(30*time.Second, func() bool {
		for _, tx := range up.Transactions() {
			if tx.Accepted() {
				for _, a := range tx.To() {
					got[a] = true
				}
			}
		}
		return len(got) == 5
	})
	if len(got) != 5 {
		t.Errorf("the smarthost got %v; want all five recipients", got)
	}
	for _, e := range r.events("delivery") {
		if res := e.Get("result"); res == "bounced" || res == "failed" {
			t.Errorf("delivery line %v: a 452 must defer, not fail", e.Fields)
		}
	}
	for _, tx := range up.Transactions() {
		if strings.Contains(string(tx.Data), "Undelivered") || tx.MailFrom == "" {
			t.Errorf("a bounce reached the smarthost: %+v", tx.Rcpts)
		}
	}
}

// TestRevRt421MidTransaction: a smarthost that answers the second RCPT
// with "421 4.4.2 closing" and hangs up: the recipient it had accepted is
// not counted as sent (the transaction never ended), and both arrive
// once, on the retry.
func TestRevRt421MidTransaction(t *testing.T) {
	t.Parallel()
	var first atomic.Bool
	first.Store(true)
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if stage == harness.StageRcpt && len(tx.Rcpts) == 1 && first.CompareAndSwap(true, false) {
			return harness.Response{Reply: "421 4.4.2 fake closing connection", Fault: harness.Close421}
		}
		return harness.Response{}
	}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--poll", "1", "--interface", "127.0.0.1",
		"--config", writeConfig(t, ""), "--spool-dir", t.TempDir(), "--forward-to", up.Addr())
	mustSend(t, r.addr(), "alice@example.org", []string{"r1@example.net", "r2@example.net"}, message("mid 421"))
	got := map[string]int{}
	waitFor(20*time.Second, func() bool {
		clear(got)
		for _, tx := range up.Transactions() {
			if tx.Accepted() {
				for _, a := range tx.To() {
					got[a]++
				}
			}
		}
		return len(got) == 2
	})
	time.Sleep(2 * time.Second)
	if got["r1@example.net"] != 1 || got["r2@example.net"] != 1 {
		t.Errorf("accepted copies per recipient %v; want one each", got)
	}
	for _, e := range r.events("delivery") {
		if e.Get("result") == "sent" && strings.HasPrefix(e.Get("reply"), "421") {
			t.Errorf("delivery line %v: sent on a 421", e.Fields)
		}
		if res := e.Get("result"); res == "bounced" || res == "failed" {
			t.Errorf("delivery line %v: a 421 must defer", e.Fields)
		}
	}
}

// TestRevRtMXLoopsBack: a domain whose only MX is the relay itself (here
// 127.0.71.25:25 forwarded to the relay's port). The relay sent the mail
// to itself, took it again, and so on until the hop count ran out (before
// that, forever). Postfix bounces at once: "mail for dest.example loops
// back to myself" (5.4.6); so does relaykeeper, having seen its own name
// in the EHLO reply. A better MX than the relay takes the mail (a
// worse one never gets it: TestQ20BestMXSelfNotHandedToBackup).
func TestRevRtMXLoopsBack(t *testing.T) {
	t.Parallel()
	const self, second = "127.0.71.25", "127.0.71.26"
	other := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2.other.example"})
	dns := harness.StartDNS(t, fmt.Sprintf(`
loop.example.        MX 10 self.loop.example.
self.loop.example.   A  %s
other.example.       MX 20 self.loop.example.
other.example.       MX 10 mx2.other.example.
mx2.other.example.   A  %s
`, self, second))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--domain", "relay.loop.test",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	forwardPort25(t, self, r.addr())
	forwardPort25(t, second, other.Addr())

	mustSend(t, r.addr(), "alice@example.org", []string{"user@loop.example"}, message("mx loop"))
	e := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@loop.example>" })
	if res := e.Get("result"); (res != "failed" && res != "bounced") || !strings.Contains(e.Get("reply"), "5.4.6 mail for loop.example loops back to myself") {
		t.Errorf("delivery line %v; want failed with 5.4.6 mail for loop.example loops back to myself", e.Fields)
	}
	if n := len(r.events("accept")); n != 1 {
		t.Errorf("%d accepts; want 1: the relay must not take its own mail again", n)
	}

	mustSend(t, r.addr(), "alice@example.org", []string{"user@other.example"}, message("better mx"))
	if txs := other.WaitTransactions(t, 1, 20*time.Second); !txs[0].Accepted() {
		t.Errorf("the better MX got %+v; want the message", txs[0])
	}
}

// TestRevRtHopcountProxy: in proxy mode the message streams to the
// upstream while it is received; past the hop count the client hears 554
// 5.4.0 and the upstream never gets the final dot.
func TestRevRtHopcountProxy(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	_, final := opsSend(t, r.addr(), "client.example", "<a@example.org>", []string{"<b@example.net>"}, hops(49))
	if final.String() != "554 5.4.0 Error: too many hops" {
		t.Errorf("final reply %q; want 554 5.4.0 Error: too many hops", final)
	}
	time.Sleep(500 * time.Millisecond)
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			t.Errorf("the upstream accepted the looping message: %+v", tx.Rcpts)
		}
	}
}

// TestRevRtMX4xxNextMX: the first MX answers 4xx (to RCPT here, as a
// greylisting backup MX does; to MAIL on the second domain): Postfix keeps
// the recipient for the next MX host in the same delivery attempt, and the
// second MX takes the mail at once rather than after the backoff.
func TestRevRtMX4xxNextMX(t *testing.T) {
	t.Parallel()
	const ip1, ip2 = "127.0.71.27", "127.0.71.28"
	mx1 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx1.grey.example",
		Rcpt: harness.Response{Reply: "450 4.2.0 greylisted, try again later"}})
	mx2 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2.grey.example"})
	dns := harness.StartDNS(t, fmt.Sprintf(`
grey.example.        MX 10 mx1.grey.example.
grey.example.        MX 20 mx2.grey.example.
mx1.grey.example.    A  %s
mx2.grey.example.    A  %s
`, ip1, ip2))
	forwardPort25(t, ip1, mx1.Addr())
	forwardPort25(t, ip2, mx2.Addr())
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"user@grey.example"}, message("greylisted mx1"))
	if txs := mx2.WaitTransactions(t, 1, 15*time.Second); !txs[0].Accepted() {
		t.Errorf("mx2 got %+v; want the message", txs[0])
	}
}
