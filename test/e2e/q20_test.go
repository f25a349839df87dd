package e2e

// Outside review (q20) of retries, partial success and notices, against
// what Postfix's queue manager and bounce(8) do.

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestQ20PartialThenFinal: one message, four recipients. The upstream
// takes one, defers one (450) and refuses it for good (550) on the next
// attempt, refuses one that asked NOTIFY=NEVER and one with an ORCPT.
// Postfix sends a notice about the refused one at once (RET=HDRS: headers
// only), none about the NOTIFY=NEVER one, retries only the deferred one,
// and sends its own notice when it fails.
func TestQ20PartialThenFinal(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	soonTries := 0
	fake := harness.NewFakeSMTP(t, harness.Script{
		Hostname: "mx.upstream.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageRcpt || tx.MailFrom == "" {
				return harness.Response{}
			}
			switch arg {
			case "soon@example.net":
				mu.Lock()
				defer mu.Unlock()
				soonTries++
				if soonTries == 1 {
					return harness.Response{Reply: "450 4.2.0 mailbox busy"}
				}
				return harness.Response{Reply: "550 5.1.1 gone now"}
			case "never@example.net", "orcpt@example.net":
				return harness.Response{Reply: "550 5.1.1 no such user"}
			}
			return harness.Response{}
		},
	})
	r := opsRelay(t, fake.Addr(), "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n",
		"--forward-on-disconnect")
	body := "From: alice@example.org\r\nTo: ok@example.net\r\nSubject: partial\r\nMessage-ID: <q20@example.org>\r\n\r\nsecret body line\r\n"
	rr, final := opsSend(t, r.addr(), "client.test", "<alice@example.org> RET=HDRS ENVID=q20env", []string{
		"<ok@example.net>",
		"<soon@example.net>",
		"<never@example.net> NOTIFY=NEVER",
		"<orcpt@example.net> ORCPT=rfc822;orig@example.org",
	}, body)
	for i, rep := range rr {
		if rep.code() != 250 {
			t.Fatalf("RCPT %d: %v", i, rep)
		}
	}
	if final.code() != 250 {
		t.Fatalf("final reply %v", final)
	}

	first := revDSNNotice(t, fake, "alice@example.org")
	if len(first.PerRecipient) != 1 {
		t.Fatalf("first notice reports %d recipients; want 1 (orcpt@ only)\n%s", len(first.PerRecipient), first.Bodies[1])
	}
	g := first.PerRecipient[0]
	for name, want := range map[string]string{
		"Final-Recipient": "rfc822; orcpt@example.net",
		"Action":          "failed",
		"Status":          "5.1.1",
	} {
		if got := dsnField(g, name); got != want {
			t.Errorf("first notice %s = %q; want %q", name, got, want)
		}
	}
	// The address type is case-insensitive (RFC 3464 section 2.1.2).
	if got := dsnField(g, "Original-Recipient"); !strings.EqualFold(got, "rfc822;orig@example.org") {
		t.Errorf("first notice Original-Recipient = %q; want rfc822;orig@example.org", got)
	}
	if got := dsnField(first.PerMessage, "Original-Envelope-Id"); got != "q20env" {
		t.Errorf("Original-Envelope-Id = %q; want q20env", got)
	}
	if len(first.Types) != 3 || first.Types[2] != "text/rfc822-headers" || strings.Contains(first.Bodies[2], "secret body line") {
		t.Errorf("RET=HDRS: third part %q should be the header only:\n%v", first.Types, first.Bodies)
	}
	if strings.Contains(first.Bodies[0], "never@example.net") || strings.Contains(first.Bodies[1], "never@example.net") {
		t.Errorf("the NOTIFY=NEVER recipient is in the notice:\n%s", first.Bodies[0])
	}

	// The second attempt offers only soon@, which now fails for good.
	var second dsnNotice
	if !waitFor(20*time.Second, func() bool {
		var n int
		for _, tx := range txsFrom(fake, "") {
			if tx.Accepted() {
				n++
				if n == 2 {
					second = parseNotice(t, string(tx.Data))
				}
			}
		}
		return n >= 2
	}) {
		t.Fatalf("no second notice; upstream saw %d transactions", len(fake.Transactions()))
	}
	if len(second.PerRecipient) != 1 || dsnField(second.PerRecipient[0], "Final-Recipient") != "rfc822; soon@example.net" ||
		dsnField(second.PerRecipient[0], "Status") != "5.1.1" {
		t.Errorf("second notice should report soon@example.net 5.1.1:\n%s", second.Bodies[1])
	}
	time.Sleep(1500 * time.Millisecond)
	okRcpts := 0
	for _, tx := range txsFrom(fake, "alice@example.org") {
		for _, rc := range tx.Rcpts {
			if rc.Addr == "ok@example.net" {
				okRcpts++
			}
			if rc.Addr != "soon@example.net" && len(tx.Rcpts) == 1 {
				t.Errorf("retry offered %s again", rc.Addr)
			}
		}
	}
	if okRcpts != 1 {
		t.Errorf("ok@example.net offered %d times; want once", okRcpts)
	}
	if n := len(txsFrom(fake, "")); n != 2 {
		t.Errorf("%d notices; want 2", n)
	}
}

// TestQ20QueueOnMessageInDelivery: the queue commands on a running relay,
// against a message whose delivery is under way (the upstream stalls at
// the final dot): delete and hold report it busy and exit 1, leaving it
// alone, so that it is delivered once; list and show describe it; an id
// that does not exist is "not found", exit 1.
func TestQ20QueueOnMessageInDelivery(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 4 * time.Second}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--domain", "relay.test", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("in delivery")).Final)
	waitSpool(t, spool, 10*time.Second, id+" claimed (.busy)", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.busy"})
	})
	for _, cmd := range []string{"delete", "hold"} {
		out, errOut, code := opsCmd(t, "", "queue", cmd, "--spool-dir", spool, id)
		if code != 1 || !strings.Contains(out, id+": busy") {
			t.Errorf("queue %s on a message in delivery: exit %d, %q %q; want exit 1 and %q", cmd, code, out, errOut, id+": busy")
		}
	}
	out, _, code := opsCmd(t, "", "queue", "list", "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "claimed") {
		t.Errorf("queue list: exit %d\n%s\nwant %s claimed", code, out, id)
	}
	out, _, code = opsCmd(t, "", "queue", "show", "--spool-dir", spool, id)
	if code != 0 || !strings.Contains(out, "state:        claimed") {
		t.Errorf("queue show: exit %d\n%s", code, out)
	}
	out, _, code = opsCmd(t, "", "queue", "delete", "--spool-dir", spool, "0000000000000000")
	if code != 1 || !strings.Contains(out, "0000000000000000: not found") {
		t.Errorf("queue delete of an unknown id: exit %d %q", code, out)
	}
	fake.WaitTransactions(t, 1, 15*time.Second)
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id && e.Get("result") == "sent" })
	waitOpsSpool(t, spool, 10*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	if n := len(fake.Transactions()); n != 1 {
		t.Errorf("upstream saw %d transactions; want 1", n)
	}
}

// TestQ20MXLoopsBackWithTransportHelo: the guide's set-up, a transport
// with its own helo_name (out_default, "relay.zombig.name") as the default
// transport, and a domain whose only MX is the relay itself. The relay
// took its own EHLO reply for another host's, because it compared the
// reply with the transport's HELO name instead of its own name (the one
// its SMTP server greets with, Postfix's myhostname, which Postfix's
// smtp client compares): it sent the mail to itself over and over. It
// bounces at once, 5.4.6, as Postfix does.
func TestQ20MXLoopsBackWithTransportHelo(t *testing.T) {
	t.Parallel()
	const self = "127.0.72.25"
	dns := harness.StartDNS(t, fmt.Sprintf(`
loop.example.        MX 10 self.loop.example.
self.loop.example.   A  %s
`, self))
	cfg := writeConfig(t, fmt.Sprintf(`[routing]
default_transport = "out_default"
dns_server = %q

[transports.out_default]
helo_name = "relay.zombig.name"
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--domain", "relay.loop.test",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	forwardPort25(t, self, r.addr())

	mustSend(t, r.addr(), "alice@example.org", []string{"user@loop.example"}, message("mx loop, transport helo"))
	e := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@loop.example>" })
	if res := e.Get("result"); (res != "failed" && res != "bounced") || !strings.Contains(e.Get("reply"), "5.4.6 mail for loop.example loops back to myself") {
		t.Errorf("delivery line %v; want bounced with 5.4.6 mail for loop.example loops back to myself", e.Fields)
	}
	time.Sleep(time.Second)
	if n := len(r.events("accept")); n != 1 {
		t.Errorf("%d accepts; want 1: the relay must not take its own mail again", n)
	}
}

// TestQ20BounceToUnreachableSender: by MX, a recipient refused for good,
// from a sender whose domain does not exist. The notice to the sender
// fails at once (NXDOMAIN), becomes a double bounce to the postmaster of
// a domain that does not exist either, which is dropped and logged: no
// loop, no retries, no notice left in the queue.
func TestQ20BounceToUnreachableSender(t *testing.T) {
	t.Parallel()
	const mx = "127.0.72.31"
	fake := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.dest.example",
		RcptFor: map[string]harness.Response{"bad@dest.example": {Reply: "550 5.1.1 no such user"}}})
	forwardPort25(t, mx, fake.Addr())
	dns := harness.StartDNS(t, fmt.Sprintf("dest.example. MX 10 mx.dest.example.\nmx.dest.example. A %s\n", mx))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\n", dns.Addr()))
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--domain", "relay.nx-q20.example",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@nx-q20.example", []string{"bad@dest.example"}, message("unreachable sender"))

	r.waitEvent("discard", 20*time.Second, nil)
	time.Sleep(2500 * time.Millisecond) // a retry would come within the back-off of 1s
	ds := r.events("delivery")
	if got := deliveries(ds, "bad@dest.example", "bounced"); len(got) != 1 {
		t.Errorf("bad@dest.example: %d bounced lines; want 1", len(got))
	}
	if got := deliveries(ds, "alice@nx-q20.example", ""); len(got) != 1 || got[0].Get("result") != "bounced" {
		t.Errorf("notice to alice: %v; want one line, bounced", fieldsOf(got))
	}
	if got := deliveries(ds, "postmaster@relay.nx-q20.example", ""); len(got) != 1 {
		t.Errorf("double bounce: %v; want one line", fieldsOf(got))
	}
	if n := len(r.events("discard")); n != 1 {
		t.Errorf("%d discard lines; want 1", n)
	}
	if n := len(fake.Transactions()); n != 1 {
		t.Errorf("upstream saw %d transactions; want 1", n)
	}
	files := opsSpool(t, spool)
	if len(files) != 1 {
		t.Errorf("spool holds %v; want only the original message, failed", files)
	}
}

// TestQ20BackupMXPrimaryDown: the relay is a domain's backup MX
// (preference 20) and the primary (10) is down. Postfix's smtp client
// tries only the MX hosts better than itself and defers when they fail:
// that is what a backup MX is for. The relay bounced the mail "5.4.6 mail
// for DOMAIN loops back to myself" because it had also tried itself.
func TestQ20BackupMXPrimaryDown(t *testing.T) {
	t.Parallel()
	const primary, self = "127.0.72.51", "127.0.72.52"
	dns := backupMXDown(t, primary, self)
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\n", dns.Addr()))
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--domain", "mx2.backup.example",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)
	forwardPort25(t, self, r.addr())

	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"user@backup.example"}, message("primary down")).Final)
	e := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@backup.example>" })
	if res := e.Get("result"); res != "deferred" {
		t.Errorf("delivery line %v; want deferred while the primary MX is down", e.Fields)
	}
	// Ready again between attempts (a retry under way, on a loaded
	// machine, has it busy for a moment).
	var files map[string][]string
	if !waitFor(10*time.Second, func() bool {
		files = opsSpool(t, spool)
		return slices.Equal(files[id], []string{"content", "envelope"})
	}) {
		t.Errorf("spool %v; want %s ready", files, id)
	}
	if n := len(r.events("accept")); n != 1 {
		t.Errorf("%d accepts; want 1", n)
	}

	// The primary comes back: the next attempt delivers there.
	up := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx1.backup.example"})
	forwardPort25(t, primary, up.Addr())
	if txs := up.WaitTransactions(t, 1, 20*time.Second); !txs[0].Accepted() {
		t.Errorf("the primary got %+v; want the message", txs[0])
	}
}

// TestQ20LimitsMultiDestinationMessages: every message has a recipient at
// each of two destinations, each limited to one session at once. The
// message waits in its first destination's queue and its worker opens a
// session for the other: that session must respect the other
// destination's limit too, with 8 connections free and slow servers.
func TestQ20LimitsMultiDestinationMessages(t *testing.T) {
	t.Parallel()
	sinkA, meterA := newMeteredSink(t, 100*time.Millisecond)
	sinkB, meterB := newMeteredSink(t, 100*time.Millisecond)
	table := transportTable(t, "a.example one_a:", "b.example one_b:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 8

[routing]
transport_maps = ["hash:%s"]

[transports.one_a]
nexthop = "[%s]:%s"
destination_concurrency_limit = 1

[transports.one_b]
nexthop = "[%s]:%s"
destination_concurrency_limit = 1
`, table, hostOf(sinkA.Addr()), portOf(sinkA.Addr()), hostOf(sinkB.Addr()), portOf(sinkB.Addr())))
	var msgs [][]string
	for i := range 12 {
		if i%2 == 0 {
			msgs = append(msgs, []string{fmt.Sprintf("u%d@a.example", i), fmt.Sprintf("u%d@b.example", i)})
		} else {
			msgs = append(msgs, []string{fmt.Sprintf("u%d@b.example", i), fmt.Sprintf("u%d@a.example", i)})
		}
	}
	storeThenForward(t, cfg, msgs)
	sinkA.WaitTransactions(t, 12, 30*time.Second)
	sinkB.WaitTransactions(t, 12, 30*time.Second)
	for name, c := range map[string][2]int{"a": {sinkA.MaxConcurrent(), meterA.max()}, "b": {sinkB.MaxConcurrent(), meterB.max()}} {
		if c[0] > 1 || c[1] > 1 {
			t.Errorf("destination %s: %d sessions, %d transactions at once; want at most 1 (destination_concurrency_limit)", name, c[0], c[1])
		}
	}
}

// TestQ20BestMXSelfNotHandedToBackup: the relay is the best MX (10) of a
// domain that also has a backup MX (20). Postfix truncates the MX list at
// its own preference: nothing is left, and it bounces "5.4.6 mail for
// DOMAIN loops back to myself" (the relay should be the domain's final
// destination, or route it by transport_maps). The relay skipped itself
// and handed the mail to the backup, which, being a backup, sends it back
// to the best MX: the two pass it to and fro until its hop count runs out.
func TestQ20BestMXSelfNotHandedToBackup(t *testing.T) {
	t.Parallel()
	const self, backup = "127.0.72.61", "127.0.72.62"
	bk := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2.best.example"})
	dns := harness.StartDNS(t, fmt.Sprintf(`
best.example.       MX 10 mx1.best.example.
best.example.       MX 20 mx2.best.example.
mx1.best.example.   A  %s
mx2.best.example.   A  %s
`, self, backup))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--domain", "mx1.best.example",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	forwardPort25(t, self, r.addr())
	forwardPort25(t, backup, bk.Addr())

	mustSend(t, r.addr(), "alice@example.org", []string{"user@best.example"}, message("best mx is me"))
	e := r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@best.example>" })
	if res := e.Get("result"); res != "bounced" || !strings.Contains(e.Get("reply"), "5.4.6 mail for best.example loops back to myself") {
		t.Errorf("delivery line %v; want bounced, 5.4.6 mail for best.example loops back to myself", e.Fields)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(bk.Transactions()); n != 0 {
		t.Errorf("the backup MX got %d transactions; want none (it would send the mail back)", n)
	}
}

// backupMXDown serves backup.example with primary as its MX 10 and self
// (the relay) as its MX 20, and makes sure nothing listens on the
// primary's port 25: the primary is down.
func backupMXDown(t *testing.T, primary, self string) *harness.DNSServer {
	t.Helper()
	if c, err := net.DialTimeout("tcp4", net.JoinHostPort(primary, "25"), time.Second); err == nil {
		c.Close()
		harness.Missing(t, "something listens on %s:25; the test needs it closed (the primary MX must be down)", primary)
	}
	return harness.StartDNS(t, fmt.Sprintf(`
backup.example.      MX 10 mx1.backup.example.
backup.example.      MX 20 mx2.backup.example.
mx1.backup.example.  A  %s
mx2.backup.example.  A  %s
`, primary, self))
}
