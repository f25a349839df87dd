package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Loopback aliases for the MX hosts of TestRoutingMX. Unusual ones, so that
// nothing else on the machine is likely to use port 25 there.
const (
	mxRefusing = "127.0.71.21" // mx1: nothing listens, connections are refused
	mxAnswer   = "127.0.71.22" // mx2: a proxy to a FakeSMTP
	mxImplicit = "127.0.71.23" // the A record of a domain without MX
)

// TestRoutingMX: with default_transport = "smtp", no relayhost and a test
// DNS server, relaykeeper delivers by MX as RFC 5321 section 5.1 says: the
// MX hosts in preference order (the first refusing connections, the second
// taking the message), the domain's own A record when it has no MX, an
// immediate bounce for a domain that does not exist (5.1.2) and for a null
// MX (RFC 7505, 5.1.10), with no retry of either.
func TestRoutingMX(t *testing.T) {
	t.Parallel()
	if c, err := net.DialTimeout("tcp4", net.JoinHostPort(mxRefusing, "25"), time.Second); err == nil {
		c.Close()
		harness.Missing(t, "something listens on %s:25; the test needs it closed (the first MX must refuse)", mxRefusing)
	}
	mx2 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2.dest.example"})
	implicit := harness.NewFakeSMTP(t, harness.Script{Hostname: "aonly.example"})
	fw2 := forwardPort25(t, mxAnswer, mx2.Addr())
	fwA := forwardPort25(t, mxImplicit, implicit.Addr())

	dns := harness.StartDNS(t, fmt.Sprintf(`
dest.example.        MX 10 mx1.dest.example.
dest.example.        MX 20 mx2.dest.example.
mx1.dest.example.    A  %s
mx2.dest.example.    A  %s
aonly.example.       A  %s
nullmx.example.      MX 0 .
`, mxRefusing, mxAnswer, mxImplicit))

	cfg := writeConfig(t, fmt.Sprintf(`
[routing]
default_transport = "smtp"
dns_server = %q
`, dns.Addr()))
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)

	mustSend(t, r.addr(), "alice@example.org", []string{"user@dest.example"}, message("mx fallback"))
	mustSend(t, r.addr(), "alice@example.org", []string{"user@aonly.example"}, message("implicit mx"))
	mustSend(t, r.addr(), "alice@example.org", []string{"user@nx.example"}, message("no such domain"))
	mustSend(t, r.addr(), "alice@example.org", []string{"user@nullmx.example"}, message("null mx"))

	// 1. The first MX refuses; the second takes it.
	txs := mx2.WaitTransactions(t, 1, 10*time.Second)
	if got := txs[0].To(); !slices.Equal(got, []string{"user@dest.example"}) || !txs[0].Accepted() {
		t.Errorf("mx2 got recipients %v (accepted %v); want user@dest.example, accepted", got, txs[0].Accepted())
	}
	if got := fw2.Clients(); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.1:") {
		t.Errorf("mx2 (%s:25) saw connections from %v; want one, from 127.0.0.1", mxAnswer, got)
	}
	e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@dest.example>" })
	if e.Get("result") != "sent" || !strings.Contains(e.Get("relay"), mxAnswer) || !strings.Contains(e.Get("relay"), "25") ||
		strings.Contains(e.Get("relay"), mxRefusing) {
		t.Errorf("delivery line for user@dest.example = %v; want result=sent and a relay naming %s port 25", e.Fields, mxAnswer)
	}
	t.Logf("MX delivery line: relay=%q reply=%q", e.Get("relay"), e.Get("reply"))

	// 2. No MX, an A record: the implicit MX, port 25.
	txs = implicit.WaitTransactions(t, 1, 10*time.Second)
	if got := txs[0].To(); !slices.Equal(got, []string{"user@aonly.example"}) || !txs[0].Accepted() {
		t.Errorf("implicit MX got recipients %v (accepted %v); want user@aonly.example", got, txs[0].Accepted())
	}
	if got := fwA.Clients(); len(got) != 1 {
		t.Errorf("implicit MX (%s:25) saw %d connections; want 1", mxImplicit, len(got))
	}
	e = r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<user@aonly.example>" })
	if e.Get("result") != "sent" || !strings.Contains(e.Get("relay"), mxImplicit) {
		t.Errorf("delivery line for user@aonly.example = %v; want result=sent via %s", e.Fields, mxImplicit)
	}

	// 3. NXDOMAIN and 4. null MX: bounced at once, 5.1.2 and 5.1.10.
	for _, c := range []struct{ rcpt, code string }{
		{"user@nx.example", "5.1.2"},
		{"user@nullmx.example", "5.1.10"},
	} {
		e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<"+c.rcpt+">" })
		reply := e.Get("reply")
		// The relay's own finding: its account, without a reply code
		// that would put it in a server's mouth.
		if e.Get("result") != "bounced" || !strings.HasPrefix(reply, c.code+" ") {
			t.Errorf("delivery line for %s: result=%s reply=%q; want bounced with %s", c.rcpt, e.Get("result"), reply, c.code)
		}
	}

	// No retries: minimal_backoff_time is 1s, so a deferral would be retried (and
	// logged again) within the wait.
	time.Sleep(2500 * time.Millisecond)
	es := r.events("delivery")
	for _, rcpt := range []string{"user@nx.example", "user@nullmx.example", "user@dest.example", "user@aonly.example"} {
		if got := deliveries(es, rcpt, ""); len(got) != 1 {
			t.Errorf("%d delivery lines for %s; want exactly 1 (no retry): %v", len(got), rcpt, fieldsOf(got))
		}
	}
	if n := countQuestions(dns, "nx.example. MX"); n != 1 {
		t.Errorf("nx.example MX asked %d times; want once (bounced, not retried)", n)
	}
	if n := countQuestions(dns, "nullmx.example. MX"); n != 1 {
		t.Errorf("nullmx.example MX asked %d times; want once", n)
	}
	if n := countQuestions(dns, "aonly.example. A"); n < 1 {
		t.Errorf("aonly.example A never asked; questions: %v", dns.Questions())
	}
	files := spoolFiles(t, spool)
	if bad := idsIn(files, "content", "envelope.bad"); len(bad) != 2 || len(files) != 2 {
		t.Errorf("spool holds %v; want exactly the two bounced messages, failed (envelope.bad)", files)
	}
	if mx2.Connections() != 1 {
		t.Errorf("mx2 had %d connections; want 1", mx2.Connections())
	}
}

func countQuestions(dns *harness.DNSServer, q string) int {
	n := 0
	for _, x := range dns.Questions() {
		if x == q {
			n++
		}
	}
	return n
}

// portForward accepts on IP:25 and pipes each connection to a FakeSMTP on
// 127.0.0.1 (the harness listens there only), recording who connected.
type portForward struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	clients []string
	conns   map[net.Conn]bool
	closed  bool
}

// forwardPort25 listens on ip:25, or skips the test when it cannot.
func forwardPort25(t *testing.T, ip, target string) *portForward {
	t.Helper()
	ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "25"))
	if err != nil {
		harness.Missing(t, "cannot listen on %s:25 (%v): the MX test needs port 25 on a loopback alias (root, port free)", ip, err)
	}
	p := &portForward{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *portForward) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.DialTimeout("tcp4", p.target, 5*time.Second)
		p.mu.Lock()
		if err != nil || p.closed {
			p.mu.Unlock()
			c.Close()
			if d != nil {
				d.Close()
			}
			continue
		}
		p.clients = append(p.clients, c.RemoteAddr().String())
		p.conns[c], p.conns[d] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		var once sync.Once
		end := func() {
			once.Do(func() {
				c.Close()
				d.Close()
				p.mu.Lock()
				delete(p.conns, c)
				delete(p.conns, d)
				p.mu.Unlock()
			})
		}
		go func() { defer p.wg.Done(); io.Copy(d, c); end() }()
		go func() { defer p.wg.Done(); io.Copy(c, d); end() }()
	}
}

// Clients returns the address of every client that connected, in order.
func (p *portForward) Clients() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.clients)
}

func (p *portForward) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// txMeter watches a FakeSMTP through its Decide hook: when each
// transaction started (MAIL), how many were under way at once (from MAIL
// to the reply after the final dot), and it stalls each end-of-data.
type txMeter struct {
	stall time.Duration

	mu        sync.Mutex
	starts    []time.Time
	ends      []time.Time
	open      map[int]bool // connections with a transaction under way
	maxActive int
}

func newMeteredSink(t *testing.T, stall time.Duration) (*harness.FakeSMTP, *txMeter) {
	m := &txMeter{stall: stall, open: map[int]bool{}}
	f := harness.NewFakeSMTP(t, harness.Script{Decide: m.decide})
	return f, m
}

func (m *txMeter) decide(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
	switch stage {
	case harness.StageMail:
		m.mu.Lock()
		m.starts = append(m.starts, time.Now())
		m.open[tx.Conn] = true
		m.maxActive = max(m.maxActive, len(m.open))
		m.mu.Unlock()
	case harness.StageEndOfData:
		time.Sleep(m.stall) // a slow server: no reply until the stall ends
		m.mu.Lock()
		delete(m.open, tx.Conn)
		m.ends = append(m.ends, time.Now())
		m.mu.Unlock()
	}
	return harness.Response{}
}

func (m *txMeter) max() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxActive
}

func (m *txMeter) startTimes() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.starts)
}

// storeThenForward stores msgs with a relay that forwards nothing, stops
// it, and starts one on the same spool and configuration with --forward,
// which delivers the whole queue at once. It returns the second relay and
// when it started.
func storeThenForward(t *testing.T, cfg string, msgs [][]string) (*relay, time.Time) {
	t.Helper()
	spool := t.TempDir()
	store := startRelay(t, "127.0.0.1", "--as-server", "--no-bounces", "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", spool)
	for i, to := range msgs {
		mustSend(t, store.addr(), "alice@example.org", to, message(fmt.Sprintf("queued %d to %s", i, to[0])))
	}
	store.stop(10 * time.Second)
	if n := len(idsIn(spoolFiles(t, spool), "content", "envelope")); n != len(msgs) {
		t.Fatalf("%d messages ready in the spool; want %d", n, len(msgs))
	}
	start := time.Now()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward", "--no-bounces", "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", spool)
	return r, start
}

func transportTable(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "transport")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func rcpts(domain string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("user%d@%s", i, domain))
	}
	return out
}

// TestRoutingLimitsConcurrency: a transport's destination_concurrency_limit
// = 2 holds with 8 delivery connections and 20 queued messages to a server
// that takes 300 ms over each message: never more than two sessions (or
// transactions) at once, and every message delivered.
func TestRoutingLimitsConcurrency(t *testing.T) {
	t.Parallel()
	sink, meter := newMeteredSink(t, 300*time.Millisecond)
	table := transportTable(t, "slow.example slow:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 8

[routing]
transport_maps = ["hash:%s"]

[transports.slow]
nexthop = "[%s]:%s"
destination_concurrency_limit = 2
`, table, hostOf(sink.Addr()), portOf(sink.Addr())))
	var msgs [][]string
	for i := range 20 {
		msgs = append(msgs, []string{fmt.Sprintf("user%d@slow.example", i)})
	}
	r, start := storeThenForward(t, cfg, msgs)

	txs := sink.WaitTransactions(t, 20, 15*time.Second)
	took := time.Since(start)
	got := map[string]bool{}
	for _, tx := range txs {
		if !tx.Accepted() {
			t.Errorf("transaction not accepted: %+v", tx.Rcpts)
		}
		for _, a := range tx.To() {
			got[a] = true
		}
	}
	if len(got) != 20 || len(txs) != 20 {
		t.Errorf("%d transactions for %d distinct recipients; want 20 and 20", len(txs), len(got))
	}
	t.Logf("20 messages, limit 2, 300ms each: max sessions %d, max transactions %d, %d connections, took %v",
		sink.MaxConcurrent(), meter.max(), sink.Connections(), took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("20 messages took %v to deliver; want about 3s (2 sessions, 300 ms a message), 8s at most", took.Round(time.Millisecond))
	}
	if n := sink.MaxConcurrent(); n > 2 {
		t.Errorf("FakeSMTP.MaxConcurrent() = %d; want at most 2 (destination_concurrency_limit)", n)
	}
	if n := meter.max(); n > 2 {
		t.Errorf("%d transactions at once; want at most 2", n)
	}
	if n := meter.max(); n < 2 {
		t.Errorf("at most %d transaction at once; the limit is 2 and 8 connections were free", n)
	}
	sentLines := func() int {
		n := 0
		for _, e := range r.events("delivery") {
			if e.Get("result") == "sent" {
				n++
			}
		}
		return n
	}
	waitFor(5*time.Second, func() bool { return sentLines() >= 20 })
	if sent := sentLines(); sent != 20 {
		t.Errorf("%d delivery lines with result=sent; want 20", sent)
	}
}

// TestRoutingLimitsRateDelay: destination_rate_delay = "500ms" spaces the
// transactions at its destination at least that far apart and allows one
// session at a time, even with a concurrency limit of 4.
func TestRoutingLimitsRateDelay(t *testing.T) {
	t.Parallel()
	sink, meter := newMeteredSink(t, 50*time.Millisecond)
	table := transportTable(t, "paced.example paced:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 8

[routing]
transport_maps = ["hash:%s"]

[transports.paced]
nexthop = "[%s]:%s"
destination_concurrency_limit = 4
destination_rate_delay = "500ms"
`, table, hostOf(sink.Addr()), portOf(sink.Addr())))
	var msgs [][]string
	for i := range 6 {
		msgs = append(msgs, []string{fmt.Sprintf("user%d@paced.example", i)})
	}
	storeThenForward(t, cfg, msgs)

	txs := sink.WaitTransactions(t, 6, 15*time.Second)
	starts := meter.startTimes()
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]).Round(time.Millisecond))
	}
	t.Logf("rate delay 500ms: gaps between transaction starts %v; max sessions %d, max transactions %d",
		gaps, sink.MaxConcurrent(), meter.max())
	// The delay counts from the end of each delivery, so however late a
	// transaction starts, the next one starts at least the delay after it.
	for i, g := range gaps {
		if g < 500*time.Millisecond {
			t.Errorf("gap %d between transaction starts = %v; want >= 500ms (destination_rate_delay 500ms)", i+1, g)
		}
		if g > 1500*time.Millisecond {
			t.Errorf("gap %d between transaction starts = %v; want about 500ms (destination_rate_delay), 1.5s at most", i+1, g)
		}
	}
	if n := sink.MaxConcurrent(); n != 1 {
		t.Errorf("FakeSMTP.MaxConcurrent() = %d; want 1 (a rate delay means one session at a time)", n)
	}
	if n := meter.max(); n != 1 {
		t.Errorf("%d transactions at once; want 1", n)
	}
	for _, tx := range txs {
		if !tx.Accepted() || len(tx.To()) != 1 {
			t.Errorf("transaction %+v; want one recipient, accepted", tx.Rcpts)
		}
	}
}

// TestRoutingLimitsRecipients: destination_recipient_limit = 2 splits one
// message to five recipients of its destination into three transactions of
// 2, 2 and 1 recipients, every recipient delivered once.
func TestRoutingLimitsRecipients(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	table := transportTable(t, "few.example few:")
	cfg := writeConfig(t, fmt.Sprintf(`
[routing]
transport_maps = ["hash:%s"]

[transports.few]
nexthop = "[%s]:%s"
destination_recipient_limit = 2
`, table, hostOf(sink.Addr()), portOf(sink.Addr())))
	to := rcpts("few.example", 5)
	r, _ := storeThenForward(t, cfg, [][]string{to})

	sink.WaitTransactions(t, 3, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // a fourth would come now
	txs := sink.Transactions()
	var sizes []int
	var all []string
	for _, tx := range txs {
		sizes = append(sizes, len(tx.To()))
		all = append(all, tx.To()...)
		if !tx.Accepted() {
			t.Errorf("transaction %+v not accepted", tx.Rcpts)
		}
	}
	slices.Sort(all)
	if len(txs) != 3 || !slices.Equal(sizes, []int{2, 2, 1}) || !slices.Equal(all, to) {
		t.Errorf("transactions carried %v recipients (%v); want 3 transactions of [2 2 1] covering %v", sizes, all, to)
	}
	for _, a := range to {
		if got := deliveries(r.events("delivery"), a, "sent"); len(got) != 1 {
			t.Errorf("%d sent lines for %s; want 1", len(got), a)
		}
	}
}

// TestRoutingFairness: a saturated destination (limit 1, 250 ms a message,
// 30 queued ahead) does not starve another: three messages to fast.example,
// queued after the thirty, arrive long before slow.example's queue drains.
func TestRoutingFairness(t *testing.T) {
	t.Parallel()
	slow, slowMeter := newMeteredSink(t, 250*time.Millisecond)
	fast := harness.NewFakeSMTP(t, harness.Script{})
	table := transportTable(t, "slow.example slow:", "fast.example fast:")
	cfg := writeConfig(t, fmt.Sprintf(`connections = 8

[routing]
transport_maps = ["hash:%s"]

[transports.slow]
nexthop = "[%s]:%s"
destination_concurrency_limit = 1

[transports.fast]
nexthop = "[%s]:%s"
`, table, hostOf(slow.Addr()), portOf(slow.Addr()), hostOf(fast.Addr()), portOf(fast.Addr())))
	var msgs [][]string
	for i := range 30 {
		msgs = append(msgs, []string{fmt.Sprintf("user%d@slow.example", i)})
	}
	for i := range 3 {
		msgs = append(msgs, []string{fmt.Sprintf("user%d@fast.example", i)})
	}
	_, start := storeThenForward(t, cfg, msgs)

	fast.WaitTransactions(t, 3, 10*time.Second)
	fastDone := time.Since(start)
	slowAtFast := len(slow.Transactions())
	t.Logf("fast.example's 3 done %v after the relay started, when slow.example had %d of 30",
		fastDone.Round(time.Millisecond), slowAtFast)
	if slowAtFast >= 15 {
		t.Errorf("fast.example's messages arrived only after %d of slow.example's 30; want them long before the slow queue drains", slowAtFast)
	}
	if fastDone > 3*time.Second {
		t.Errorf("fast.example's messages took %v; want under 3s while slow.example is saturated", fastDone)
	}

	// slow.example itself must still drain at its own pace: one session,
	// 250 ms a message, 7.5 s for thirty; 15 s is generous.
	drained := waitFor(15*time.Second-time.Since(start), func() bool { return len(slow.Transactions()) >= 30 })
	slowDone := time.Since(start)
	txs := slow.Transactions()
	starts := slowMeter.startTimes()
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]).Round(10*time.Millisecond))
	}
	t.Logf("slow.example: %d of 30 after %v (max %d at once); gaps between its transaction starts: %v",
		len(txs), slowDone.Round(time.Millisecond), slowMeter.max(), gaps)
	if !drained {
		t.Errorf("slow.example got %d of 30 messages in %v; want all 30 (limit 1 at 250 ms each needs about 7.5s)",
			len(txs), slowDone.Round(time.Millisecond))
	}
	if n := slowMeter.max(); n != 1 {
		t.Errorf("%d transactions at once at slow.example; want 1 (limit 1)", n)
	}
	for _, tx := range txs {
		if !tx.Accepted() {
			t.Errorf("slow transaction %+v not accepted", tx.Rcpts)
		}
	}
}
