package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// The rev-mx tests: a host that puts a recipient off (4xx) is followed,
// in the same attempt, by the destination's next MX host, as Postfix's
// smtp client does (smtp_mx_session_limit = 2); a 5xx is final; a
// recipient one host accepted is never sent again. Each test has its own
// two loopback addresses, port 25 forwarded to its two fake MX hosts.

// mxPair is fake MX hosts of one domain, mx1 preferred, then mx2 (and
// any more, in mx), and a relay that finds them through the test DNS
// server.
type mxPair struct {
	mx1, mx2 *harness.FakeSMTP
	mx       []*harness.FakeSMTP
	r        *relay
	spool    string
	domain   string
}

func startMXPair(t *testing.T, domain, ip1, ip2 string, s1, s2 harness.Script, args ...string) *mxPair {
	t.Helper()
	return startMXHosts(t, domain, []string{ip1, ip2}, []harness.Script{s1, s2}, args...)
}

// startMXHosts starts one fake MX host per address, host i at preference
// 10*(i+1), named mxN.DOMAIN.
func startMXHosts(t *testing.T, domain string, ips []string, scripts []harness.Script, args ...string) *mxPair {
	t.Helper()
	var mx []*harness.FakeSMTP
	var targets []string
	for i := range ips {
		scripts[i].Hostname = fmt.Sprintf("mx%d.%s", i+1, domain)
		mx = append(mx, harness.NewFakeSMTP(t, scripts[i]))
		targets = append(targets, mx[i].Addr())
	}
	p := startMXRelay(t, domain, "", ips, targets, args...)
	p.mx, p.mx1, p.mx2 = mx, mx[0], mx[1]
	return p
}

// startMXRelay makes ips[i] the MX host mxN.DOMAIN at preference
// 10*(i+1), its port 25 forwarded to targets[i], and starts a relay that
// finds them through the test DNS server; conf is more of its
// configuration file.
func startMXRelay(t *testing.T, domain, conf string, ips, targets []string, args ...string) *mxPair {
	t.Helper()
	p := &mxPair{domain: domain, spool: t.TempDir()}
	var zone strings.Builder
	for i, ip := range ips {
		name := fmt.Sprintf("mx%d.%s", i+1, domain)
		fmt.Fprintf(&zone, "%s. MX %d %s.\n%s. A %s\n", domain, 10*(i+1), name, name, ip)
		forwardPort25(t, ip, targets[i])
	}
	dns := harness.StartDNS(t, zone.String())
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n%s", dns.Addr(), conf))
	args = append([]string{"--as-server", "--forward-on-disconnect", "--no-bounces", "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", p.spool}, args...)
	p.r = startRelay(t, "127.0.0.1", args...)
	return p
}

// rcpts are addresses at the pair's domain.
func (p *mxPair) rcpts(locals ...string) []string {
	var out []string
	for _, l := range locals {
		out = append(out, l+"@"+p.domain)
	}
	return out
}

// deliveries waits for the first delivery lines of n recipients and
// returns them by recipient (the back-off is a second or two: a retry's
// lines are not looked at).
func (p *mxPair) deliveries(t *testing.T, n int) map[string]*maillog.Entry {
	t.Helper()
	var m map[string]*maillog.Entry
	if !waitFor(15*time.Second, func() bool {
		m = map[string]*maillog.Entry{}
		for _, e := range p.r.events("delivery") {
			if a := strings.Trim(e.Get("to"), "<>"); m[a] == nil {
				m[a] = e
			}
		}
		return len(m) >= n
	}) {
		t.Fatalf("delivery lines for %d recipients; want %d; stderr:\n%s", len(m), n, p.r.stderr())
	}
	return m
}

// sendU sends a message to u at the pair's domain and returns its
// delivery line.
func (p *mxPair) sendU(t *testing.T, subject string) *maillog.Entry {
	t.Helper()
	mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("u"), message(subject))
	return p.deliveries(t, 1)["u@"+p.domain]
}

// checkMX2Untouched fails the test if mx2 was connected to.
func (p *mxPair) checkMX2Untouched(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if n := p.mx2.Connections(); n != 0 {
		t.Errorf("mx2 had %d connections; want none", n)
	}
}

// skips are the skip lines of the first attempt by recipient (the
// back-off is a second or two: later attempts are not looked at).
func (p *mxPair) skips() map[string][]*maillog.Entry {
	m := map[string][]*maillog.Entry{}
	for _, e := range p.r.events("skip") {
		if e.Get("attempt") != "1" {
			continue
		}
		a := strings.Trim(e.Get("to"), "<>")
		m[a] = append(m[a], e)
	}
	return m
}

func checkLine(t *testing.T, what string, e *maillog.Entry, relayPrefix, result, reply string) {
	t.Helper()
	switch {
	case e == nil:
		t.Errorf("%s: no line", what)
	case !strings.HasPrefix(e.Get("relay"), relayPrefix):
		t.Errorf("%s: relay=%s; want %s...", what, e.Get("relay"), relayPrefix)
	case result != "" && e.Get("result") != result:
		t.Errorf("%s: result=%s (reply %q); want %s", what, e.Get("result"), e.Get("reply"), result)
	case reply != "" && !strings.HasPrefix(e.Get("reply"), reply):
		t.Errorf("%s: reply=%q; want %q...", what, e.Get("reply"), reply)
	}
}

// accepted are the recipients of fake's accepted transactions, in order.
func accepted(f *harness.FakeSMTP) []string {
	var out []string
	for _, tx := range f.Transactions() {
		if tx.Accepted() {
			out = append(out, tx.To()...)
		}
	}
	return out
}

// TestRevMXGreeting4xx: mx1 greets with 421: Postfix skips it
// (smtp_skip_4xx_greeting) and logs "host ... refused to talk to me";
// mx2 takes the mail. A host that hangs up before any greeting is passed
// over the same way.
func TestRevMXGreeting4xx(t *testing.T) {
	t.Parallel()
	p := startMXPair(t, "greet4.example", "127.0.88.1", "127.0.88.2",
		harness.Script{Greeting: harness.Response{Reply: "421 4.3.2 mx1 busy, try later"}}, harness.Script{})
	checkLine(t, "u", p.sendU(t, "greeting 4xx"), "mx2.greet4.example[", "sent", "250")
	if got := accepted(p.mx2); !slices.Equal(got, p.rcpts("u")) {
		t.Errorf("mx2 accepted %v; want %v", got, p.rcpts("u"))
	}
	if s := p.skips()["u@greet4.example"]; len(s) != 1 {
		t.Errorf("skip lines for u: %d; want 1", len(s))
	} else {
		checkLine(t, "skip u", s[0], "mx1.greet4.example[", "", "421 4.3.2 mx1 busy, try later")
	}

	// mx1's port 25 forwarded to a port nobody listens on: the forwarder
	// takes the connection and closes it.
	mx2 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2.gone.example"})
	q := startMXRelay(t, "gone.example", "", []string{"127.0.88.32", "127.0.88.33"}, []string{"127.0.0.1:1", mx2.Addr()})
	checkLine(t, "u", q.sendU(t, "mx1 gone"), "mx2.gone.example[", "sent", "250")
	if s := q.skips()["u@gone.example"]; len(s) != 1 {
		t.Errorf("skip lines for u at gone.example: %d; want 1", len(s))
	} else {
		checkLine(t, "skip u", s[0], "mx1.gone.example[", "", "4.4.1 upstream greeting failed")
	}
}

// TestRevMXMail4xx: mx1 answers MAIL FROM with 451: the recipient goes on
// to mx2 in the same attempt; the mail log has a skip line for mx1 (with
// its reply) and the delivery line for mx2.
func TestRevMXMail4xx(t *testing.T) {
	t.Parallel()
	p := startMXPair(t, "mail4.example", "127.0.88.3", "127.0.88.4",
		harness.Script{Mail: harness.Response{Reply: "451 4.3.0 mx1 queue full"}}, harness.Script{})
	d := p.sendU(t, "mail 4xx")
	checkLine(t, "delivery u", d, "mx2.mail4.example[", "sent", "250")
	if d.Get("attempt") != "1" {
		t.Errorf("delivery attempt=%s; want 1 (the same attempt)", d.Get("attempt"))
	}
	s := p.skips()["u@mail4.example"]
	if len(s) != 1 {
		t.Fatalf("skip lines for u: %d; want 1; stderr:\n%s", len(s), p.r.stderr())
	}
	checkLine(t, "skip u", s[0], "mx1.mail4.example[", "", "451 4.3.0 mx1 queue full")
	if n := len(p.r.events("delivery")); n != 1 {
		t.Errorf("%d delivery lines; want 1", n)
	}
}

// TestRevMXRcptSplit: mx1 accepts one recipient and greylists the other:
// the message is delivered to the first at mx1 only, and the second goes
// alone to mx2. Nobody gets it twice.
func TestRevMXRcptSplit(t *testing.T) {
	t.Parallel()
	const dom = "split.example"
	p := startMXPair(t, dom, "127.0.88.5", "127.0.88.6",
		harness.Script{RcptFor: map[string]harness.Response{"b@" + dom: {Reply: "450 4.2.0 b greylisted"}}}, harness.Script{})
	mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("a", "b"), message("rcpt split"))
	d := p.deliveries(t, 2)
	checkLine(t, "a", d["a@"+dom], "mx1."+dom+"[", "sent", "250")
	checkLine(t, "b", d["b@"+dom], "mx2."+dom+"[", "sent", "250")
	time.Sleep(500 * time.Millisecond)
	if got := accepted(p.mx1); !slices.Equal(got, p.rcpts("a")) {
		t.Errorf("mx1 accepted %v; want %v alone", got, p.rcpts("a"))
	}
	if got := accepted(p.mx2); !slices.Equal(got, p.rcpts("b")) {
		t.Errorf("mx2 accepted %v; want %v alone", got, p.rcpts("b"))
	}
	if s := p.skips(); len(s["b@"+dom]) != 1 || len(s["a@"+dom]) != 0 {
		t.Errorf("skip lines %v; want one, for b", s)
	}
	checkSpoolEmpty(t, p.spool)
}

// TestRevMX421MidSession: mx1 accepts the first recipient, then answers
// the second with 421 and hangs up before any content: every recipient
// goes on to mx2, the first included (mx1 never had the message).
func TestRevMX421MidSession(t *testing.T) {
	t.Parallel()
	const dom = "mid421.example"
	p := startMXPair(t, dom, "127.0.88.7", "127.0.88.8",
		harness.Script{RcptFor: map[string]harness.Response{"b@" + dom: {Fault: harness.Close421, Reply: "421 4.3.2 mx1 shutting down"}}},
		harness.Script{})
	mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("a", "b", "c"), message("mid-session 421"))
	d := p.deliveries(t, 3)
	for _, a := range p.rcpts("a", "b", "c") {
		checkLine(t, a, d[a], "mx2."+dom+"[", "sent", "250")
	}
	if got := accepted(p.mx1); len(got) != 0 {
		t.Errorf("mx1 accepted %v; want nothing", got)
	}
	if got := accepted(p.mx2); !slices.Equal(got, p.rcpts("a", "b", "c")) {
		t.Errorf("mx2 accepted %v; want %v", got, p.rcpts("a", "b", "c"))
	}
	if s := p.skips()["b@"+dom]; len(s) != 1 {
		t.Errorf("skip lines for b: %d; want 1", len(s))
	} else {
		checkLine(t, "skip b", s[0], "mx1."+dom+"[", "", "421 4.3.2 mx1 shutting down")
	}
}

// TestRevMXEndOfData4xx: mx1 refuses one recipient for good and answers
// the end of DATA with 451: the others go to mx2; the refused one fails
// with mx1's 550 and is never offered to mx2.
func TestRevMXEndOfData4xx(t *testing.T) {
	t.Parallel()
	const dom = "eod4.example"
	p := startMXPair(t, dom, "127.0.88.9", "127.0.88.10",
		harness.Script{RcptFor: map[string]harness.Response{"c@" + dom: {Reply: "550 5.1.1 c: no such user"}},
			EndOfData: harness.Response{Reply: "451 4.3.0 mx1 cannot store it now"}},
		harness.Script{})
	mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("a", "b", "c"), message("end of data 4xx"))
	d := p.deliveries(t, 3)
	checkLine(t, "a", d["a@"+dom], "mx2."+dom+"[", "sent", "250")
	checkLine(t, "b", d["b@"+dom], "mx2."+dom+"[", "sent", "250")
	checkLine(t, "c", d["c@"+dom], "mx1."+dom+"[", "bounced", "550 5.1.1 c: no such user")
	for _, tx := range p.mx2.Transactions() {
		if slices.Contains(tx.To(), "c@"+dom) {
			t.Errorf("mx2 was offered c: %v", tx.To())
		}
	}
	if got := accepted(p.mx2); !slices.Equal(got, p.rcpts("a", "b")) {
		t.Errorf("mx2 accepted %v; want %v", got, p.rcpts("a", "b"))
	}
	if s := p.skips(); len(s["a@"+dom]) != 1 || len(s["b@"+dom]) != 1 || len(s["c@"+dom]) != 0 {
		t.Errorf("skip lines %v; want one each for a and b", s)
	}
}

// TestRevMXAll4xx: both MX hosts put the recipient off: one deferral,
// with the last host's reply and relay, in the mail log and in the
// envelope (its Remote-MTA, for the delay notice); mx1's reply is in the
// skip line.
func TestRevMXAll4xx(t *testing.T) {
	t.Parallel()
	const dom = "all4.example"
	p := startMXPair(t, dom, "127.0.88.13", "127.0.88.14",
		harness.Script{Rcpt: harness.Response{Reply: "450 4.2.0 mx1 greylisted"}},
		harness.Script{Rcpt: harness.Response{Reply: "451 4.3.0 mx2 busy"}})
	tx := mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("u"), message("all 4xx"))
	d := p.deliveries(t, 1)
	checkLine(t, "u", d["u@"+dom], "mx2."+dom+"[", "deferred", "451 4.3.0 mx2 busy")
	s := p.skips()["u@"+dom]
	if len(s) != 1 {
		t.Fatalf("skip lines for u: %d; want 1", len(s))
	}
	checkLine(t, "skip u", s[0], "mx1."+dom+"[", "", "450 4.2.0 mx1 greylisted")
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, e := range p.r.events("delivery") {
		if e.Get("attempt") == "1" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d delivery lines of the first attempt; want 1", n)
	}
	id := queuedID(t, tx.Final)
	var env envelope
	if !waitFor(5*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(p.spool, id+".envelope*"))
		if len(m) != 1 {
			return false
		}
		env = readEnvelope(t, m[0])
		return strings.Contains(env.String(), "Deferred") || strings.Contains(env.String(), "deferred")
	}) {
		t.Fatalf("no deferred envelope for %s; spool %v", id, spoolFiles(t, p.spool))
	}
	if want := "mx2." + dom + "[127.0.88.14]"; !strings.Contains(env.String(), "Remote-MTA: u@"+dom+" "+want) {
		t.Errorf("envelope does not name %s as the Remote-MTA:\n%s", want, env)
	}
}

// TestRevMXSessionLimit: with three MX hosts, the first two greylisting,
// the delivery stops after two sessions (Postfix's smtp_mx_session_limit
// = 2): one deferral with mx2's reply, and mx3 is not contacted.
func TestRevMXSessionLimit(t *testing.T) {
	t.Parallel()
	const dom = "limit.example"
	p := startMXHosts(t, dom, []string{"127.0.88.21", "127.0.88.22", "127.0.88.23"}, []harness.Script{
		{Rcpt: harness.Response{Reply: "450 4.2.0 mx1 greylisted"}},
		{Rcpt: harness.Response{Reply: "450 4.2.0 mx2 greylisted"}},
		{}})
	checkLine(t, "u", p.sendU(t, "session limit"), "mx2."+dom+"[", "deferred", "450 4.2.0 mx2 greylisted")
	time.Sleep(300 * time.Millisecond)
	if n := p.mx[2].Connections(); n != 0 {
		t.Errorf("mx3 had %d connections; want none", n)
	}
}

// TestRevMXFirstReplyFinal: replies at mx1 that are not taken to mx2.
//   - A 5xx is final: the recipient fails with it.
//   - A reply that says the relay sends too fast (Gmail's "421 4.7.0 Try
//     again later, closing connection") is the destination's: the queue
//     slows down to it once, and the same provider's next MX host is not
//     tried.
//   - Gmail's "unusual rate of unsolicited mail" at the final dot (a
//     reply the enforcer acts on: a ban, here an encapsulated copy since
//     the client is local) is about the message: a backup MX that took it
//     would hide the refusal from the enforcer, which acts on mx1's reply.
//     At RCPT, before the content, it sanctions nobody and the message
//     waits.
func TestRevMXFirstReplyFinal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, ip1, ip2, reply, result string
		check                         func(t *testing.T, p *mxPair)
		script                        harness.Script // instead of reply to RCPT
	}{
		// The session lost after the final dot, with no reply: mx1 may
		// have the message; it is not offered to mx2 (a duplicate).
		{name: "lost-after-dot", ip1: "127.0.88.24", ip2: "127.0.88.25", result: "deferred",
			script: harness.Script{EndOfData: harness.Response{Fault: harness.Close}}},
		{"5xx", "127.0.88.11", "127.0.88.12", "550 5.7.1 mx1 will not take it", "bounced", nil, harness.Script{}},
		{"pace", "127.0.88.15", "127.0.88.16", "421 4.7.0 Try again later, closing connection.", "deferred",
			func(t *testing.T, p *mxPair) {
				var paces int
				for _, e := range p.r.events("pace") {
					if e.Get("verdict") == "pace" {
						paces++
					}
				}
				if paces != 1 {
					t.Errorf("%d pace lines; want 1; stderr:\n%s", paces, p.r.stderr())
				}
			}, harness.Script{}},
		{"spam", "127.0.88.17", "127.0.88.18", "", "",
			func(t *testing.T, p *mxPair) {
				if e := p.r.waitEvent("encapsulate", 5*time.Second, nil); !strings.Contains(e.Get("reply"), "4.7.28") {
					t.Errorf("encapsulate line %v; want mx1's 4.7.28 reply", e.Fields)
				}
			}, harness.Script{EndOfData: harness.Response{Reply: gmailNetblockRate}}},
		// The same reply before the content is about the relay's address,
		// not the message (docs/enforce.md): nobody is sanctioned, the
		// message waits, and mx2 is still not tried.
		{"spam-at-rcpt", "127.0.88.19", "127.0.88.20", gmailNetblockRate, "deferred",
			func(t *testing.T, p *mxPair) {
				time.Sleep(500 * time.Millisecond)
				for _, ev := range []string{"encapsulate", "ban"} {
					if n := len(p.r.events(ev)); n != 0 {
						t.Errorf("%d %s lines for a refusal at RCPT; want none; stderr:\n%s", n, ev, p.r.stderr())
					}
				}
			}, harness.Script{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dom := c.name + ".final.example"
			s1 := c.script
			if c.reply != "" {
				s1 = harness.Script{Rcpt: harness.Response{Reply: c.reply}}
			}
			p := startMXPair(t, dom, c.ip1, c.ip2, s1, harness.Script{})
			first, _, _ := strings.Cut(c.reply, "\r\n")
			if c.result == "" {
				first = "" // the enforcer's effect decides it
			}
			checkLine(t, "u", p.sendU(t, c.name), "mx1."+dom+"[", c.result, first)
			if c.check != nil {
				c.check(t, p)
			}
			p.checkMX2Untouched(t)
			if s := p.r.events("skip"); len(s) != 0 {
				t.Errorf("skip lines %d; want none", len(s))
			}
		})
	}
}

// TestRevMXSmarthostUnchanged: a smarthost (forward.to) that answers 450
// is not followed by any other host: one session, the recipient deferred,
// no skip line, as before.
func TestRevMXSmarthostUnchanged(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: "450 4.2.0 smarthost greylisted"}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--forward-to", up.Addr(),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"u@smarthost.example"}, message("smarthost 4xx"))
	e := r.waitEvent("delivery", 15*time.Second, nil)
	if e.Get("result") != "deferred" || !strings.HasPrefix(e.Get("reply"), "450 4.2.0 smarthost greylisted") {
		t.Errorf("delivery %v; want deferred with the smarthost's 450", e.Fields)
	}
	time.Sleep(300 * time.Millisecond)
	if n := up.Connections(); n != 1 {
		t.Errorf("smarthost had %d connections; want 1", n)
	}
	if s := r.events("skip"); len(s) != 0 {
		t.Errorf("skip lines %d; want none", len(s))
	}
}

// TestRevMXKillDuringSecond: the relay is killed (SIGKILL) while mx2
// receives the recipient mx1 greylisted. The recipient mx1 accepted was
// recorded before mx2 was tried: after the restart it is not sent again,
// and the other goes through.
func TestRevMXKillDuringSecond(t *testing.T) {
	t.Parallel()
	const dom = "kill.example"
	p := startMXPair(t, dom, "127.0.88.19", "127.0.88.20",
		harness.Script{RcptFor: map[string]harness.Response{"b@" + dom: {Reply: "450 4.2.0 b greylisted"}}},
		harness.Script{Content: harness.Response{After: 10, Delay: 20 * time.Second}})
	tx := mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("a", "b"), message("kill during mx2"))
	id := queuedID(t, tx.Final)
	p.r.waitEvent("skip", 15*time.Second, nil)
	if !waitFor(10*time.Second, func() bool { return p.mx2.Connections() > 0 }) {
		t.Fatal("mx2 never connected to")
	}
	time.Sleep(500 * time.Millisecond) // into the content
	p.r.kill()
	// Not the next attempt's rewrite in progress (ID.envelope.busy.N.tmp),
	// which a loaded machine can reach before the check.
	m, _ := filepath.Glob(filepath.Join(p.spool, id+".envelope*"))
	m = slices.DeleteFunc(m, func(n string) bool { return strings.HasSuffix(n, ".tmp") })
	if len(m) != 1 {
		t.Errorf("envelope of %s after the kill: %v; want one, a recorded sent", id, m)
	} else {
		env := readEnvelope(t, m[0])
		if st := env.rcptStatus()["a@"+dom]; !strings.HasPrefix(st, "sent ") {
			t.Errorf("a's status on disk after the kill: %q; want sent (recorded before mx2)\n%s", st, env)
		}
		if st := env.rcptStatus()["b@"+dom]; strings.HasPrefix(st, "sent ") {
			t.Errorf("b's status on disk after the kill: %q; want not sent", st)
		}
	}
	p.mx2.Update(func(s *harness.Script) { s.Content = harness.Response{} })
	p.r.restart()
	p.r.waitEvent("delivery", 30*time.Second, func(e *maillog.Entry) bool {
		return e.Get("to") == "<b@"+dom+">" && e.Get("result") == "sent"
	})
	time.Sleep(500 * time.Millisecond)
	if got := accepted(p.mx1); !slices.Equal(got, p.rcpts("a")) {
		t.Errorf("mx1 accepted %v; want %v once", got, p.rcpts("a"))
	}
	if got := accepted(p.mx2); !slices.Equal(got, p.rcpts("b")) {
		t.Errorf("mx2 accepted %v; want %v", got, p.rcpts("b"))
	}
	checkSpoolEmpty(t, p.spool)
}

// TestRevMXPostfixSinks: Postfix's own smtp-sink as the two MX hosts,
// without PIPELINING (commands one by one). mx1 answers the final dot
// with 450 (-r .), or RCPT with 421 and hangs up (-Q RCPT): the message
// goes on to mx2 in the same attempt, and mx2 has it once.
func TestRevMXPostfixSinks(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, ip1, ip2 string
		mx1            harness.SinkOptions
		reply          string
	}{
		{"eod450", "127.0.88.26", "127.0.88.27", harness.SinkOptions{SoftReject: []string{"."}}, "450 4.3.0 Error: command failed"},
		{"rcpt421", "127.0.88.28", "127.0.88.29", harness.SinkOptions{Reply421: []string{"RCPT"}}, "421 "},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dom := c.name + ".sink.example"
			mx1 := harness.StartSink(t, c.mx1)
			mx2 := harness.StartSink(t, harness.SinkOptions{})
			p := startMXRelay(t, dom, "", []string{c.ip1, c.ip2}, []string{mx1.Addr(), mx2.Addr()})
			checkLine(t, "u", p.sendU(t, c.name), "mx2."+dom+"[", "sent", "250")
			if s := p.skips()["u@"+dom]; len(s) != 1 {
				t.Errorf("skip lines for u: %d; want 1", len(s))
			} else {
				checkLine(t, "skip u", s[0], "mx1."+dom+"[", "", c.reply)
			}
			time.Sleep(300 * time.Millisecond)
			if n := mx2.Count(); n != 1 {
				t.Errorf("mx2 has %d messages; want 1", n)
			}
		})
	}
}

// TestRevMXSplitDeferred: mx1 accepts a and greylists b, mx2 greylists b
// too: a is sent, b deferred with mx2's reply, and the envelope in the
// queue says so. On the retry (mx2 takes mail now) b alone goes: mx1 gets
// it again, greylists it, and mx2 takes it; a is never sent again.
func TestRevMXSplitDeferred(t *testing.T) {
	t.Parallel()
	const dom = "splitdefer.example"
	mx1 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx1." + dom,
		RcptFor: map[string]harness.Response{"b@" + dom: {Reply: "450 4.2.0 b greylisted at mx1"}}})
	mx2 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2." + dom, Rcpt: harness.Response{Reply: "450 4.2.0 b greylisted at mx2"}})
	// writeConfig's back-off is 1 to 2 seconds.
	p := startMXRelay(t, dom, "", []string{"127.0.88.30", "127.0.88.31"}, []string{mx1.Addr(), mx2.Addr()})
	tx := mustSend(t, p.r.addr(), "alice@example.org", p.rcpts("a", "b"), message("split deferred"))
	id := queuedID(t, tx.Final)
	d := p.deliveries(t, 2)
	checkLine(t, "a", d["a@"+dom], "mx1."+dom+"[", "sent", "250")
	checkLine(t, "b", d["b@"+dom], "mx2."+dom+"[", "deferred", "450 4.2.0 b greylisted at mx2")
	// Not the next attempt's rewrite in progress (ID.envelope.busy.N.tmp),
	// which a loaded machine can reach before the check.
	m, _ := filepath.Glob(filepath.Join(p.spool, id+".envelope*"))
	m = slices.DeleteFunc(m, func(n string) bool { return strings.HasSuffix(n, ".tmp") })
	if len(m) != 1 {
		t.Errorf("envelope of %s: %v; want one", id, m)
	} else {
		st := readEnvelope(t, m[0]).rcptStatus()
		if !strings.HasPrefix(st["a@"+dom], "sent ") || !strings.HasPrefix(st["b@"+dom], "deferred b@"+dom+" 450 4.2.0 b greylisted at mx2") {
			t.Errorf("envelope statuses %q; want a sent, b deferred with mx2's reply", st)
		}
	}
	mx2.Update(func(s *harness.Script) { s.Rcpt = harness.Response{} })
	p.r.waitEvent("delivery", 30*time.Second, func(e *maillog.Entry) bool {
		return e.Get("to") == "<b@"+dom+">" && e.Get("result") == "sent"
	})
	checkSpoolEmpty(t, p.spool)
	if got := accepted(mx1); !slices.Equal(got, p.rcpts("a")) {
		t.Errorf("mx1 accepted %v; want %v once", got, p.rcpts("a"))
	}
	if got := accepted(mx2); !slices.Equal(got, p.rcpts("b")) {
		t.Errorf("mx2 accepted %v; want %v once", got, p.rcpts("b"))
	}
}

// TestRevMXBatchAhead: four messages to one domain with one session at a
// time go out as one batch over one mx1 session (the next message's
// commands pipelined behind the final dot); mx1 greylists b in each. Every
// message reaches a at mx1 and b at mx2, once each, and the mx1 session is
// kept across them (the mx2 sessions are not).
func TestRevMXBatchAhead(t *testing.T) {
	t.Parallel()
	const dom = "ahead.example"
	mx1 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx1." + dom,
		RcptFor: map[string]harness.Response{"b@" + dom: {Reply: "450 4.2.0 b greylisted"}}})
	mx2 := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx2." + dom})
	// One session at a time to the domain: the messages queue behind it.
	p := startMXRelay(t, dom, "destination_concurrency_limit = 1\n", []string{"127.0.88.34", "127.0.88.35"},
		[]string{mx1.Addr(), mx2.Addr()})
	p.mx1, p.mx2 = mx1, mx2
	c, _, err := dialFrom(p.r.addr(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.cmd("EHLO client.e2e.test")
	const n = 4
	for m := range n {
		if _, err := c.send("alice@example.org", p.rcpts("a", "b"), message(fmt.Sprintf("batch %d", m))); err != nil {
			t.Fatalf("message %d: %v", m, err)
		}
	}
	c.cmd("QUIT")
	c.Close()
	if !waitFor(20*time.Second, func() bool { return len(accepted(p.mx1)) == n && len(accepted(p.mx2)) == n }) {
		t.Fatalf("mx1 accepted %v, mx2 %v; want a %d times at mx1, b %d times at mx2; stderr:\n%s",
			accepted(p.mx1), accepted(p.mx2), n, n, p.r.stderr())
	}
	time.Sleep(500 * time.Millisecond)
	for _, a := range accepted(p.mx1) {
		if a != "a@"+dom {
			t.Errorf("mx1 accepted %s; want a only", a)
		}
	}
	for _, a := range accepted(p.mx2) {
		if a != "b@"+dom {
			t.Errorf("mx2 accepted %s; want b only", a)
		}
	}
	for _, tx := range p.mx1.Transactions() {
		if tx.Conn != 1 {
			t.Errorf("mx1 transaction on connection %d; want every one on the first (the worker's session kept)", tx.Conn)
		}
	}
	if got := len(accepted(p.mx1)) + len(accepted(p.mx2)); got != 2*n {
		t.Errorf("%d deliveries; want %d", got, 2*n)
	}
	checkSpoolEmpty(t, p.spool)
}

// gmailNetblockRate is Gmail's "unusual rate of unsolicited mail" for the
// relay's netblock, as it answers (multi-line).
const gmailNetblockRate = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n" +
	"421-4.7.28 from your IP Netblock [127.0.0.1 34]. To protect our users from spam,\r\n421 4.7.28 mail has been temporarily rate limited. - gsmtp"
