package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm27NoTLS is Gmail's refusal of mail not sent over TLS (gmail-replies.md,
// alert): the relay's own set-up, said to every message it sends.
const gm27NoTLS = "550-5.7.29 This message was blocked because it wasn't sent over a TLS\r\n" +
	"550-5.7.29 connection. Gmail requires all bulk email senders to use TLS/SSL\r\n" +
	"550 5.7.29 for SMTP connections. https://support.google.com/mail/?p=TLSRequired x1si1 - gsmtp"

// gm27Gmail refuses every transaction at the final dot with reply while
// refusing is set, the relay's own alerts to the administrator too, and
// takes everything once it is cleared.
type gm27Gmail struct {
	*harness.FakeSMTP
	refusing atomic.Bool
	mu       sync.Mutex
	refused  []harness.Transaction
}

func newGm27Gmail(t *testing.T, reply string) *gm27Gmail {
	g := &gm27Gmail{}
	g.refusing.Store(true)
	g.FakeSMTP = harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Capabilities: []string{"8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageEndOfData || !g.refusing.Load() {
				return harness.Response{}
			}
			g.mu.Lock()
			g.refused = append(g.refused, tx)
			g.mu.Unlock()
			return harness.Response{Reply: reply}
		}})
	return g
}

func gm27ToAdmin(tx harness.Transaction) bool {
	return slices.Contains(tx.To(), "admin@relay.test")
}

// TestGm27AlertReachesAdmin: Gmail refuses every message the relay sends
// for its own set-up (no TLS), the relay's alert to the administrator
// too. The alert is about the relay, not about the alert's content: it
// must stay queued like the client's mail, and reach the administrator
// once the set-up is mended, not be dropped as a refused double bounce.
func TestGm27AlertReachesAdmin(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{false, true} {
		name := "store"
		if proxy {
			name = "proxy"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			gmail := newGm27Gmail(t, gm27NoTLS)
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, extra: []string{"--mail", "admin@relay.test"}})
			tx, err := sendFrom(r.addr(), "127.0.0.41", "bob@clean.example", []string{"friend@gmail.test"}, gmailMessage("bob@clean.example", "alert"))
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			t.Logf("client heard %v", heardReply(tx))
			r.waitEvent("admin-alert", 15*time.Second, nil)
			// The alert goes to the administrator through the same
			// upstream, which refuses it.
			if !waitFor(15*time.Second, func() bool {
				gmail.mu.Lock()
				defer gmail.mu.Unlock()
				return slices.ContainsFunc(gmail.refused, gm27ToAdmin)
			}) {
				t.Fatal("the alert was never sent to the upstream")
			}
			time.Sleep(2 * time.Second)
			gmail.refusing.Store(false) // the administrator's fix: the upstream takes mail now
			runCLI(t, "queue", "flush", "--spool-dir", r.spool)
			ok := waitFor(20*time.Second, func() bool {
				for _, tx := range gmail.Transactions() {
					if gm27ToAdmin(tx) && tx.Accepted() {
						return true
					}
				}
				return false
			})
			if !ok {
				var ev []string
				for _, e := range append(r.events("delivery"), r.events("report")...) {
					ev = append(ev, strings.Join(fieldsOf([]*maillog.Entry{e}), " "))
				}
				t.Errorf("the alert never reached the administrator; relay events: %v", ev)
			}
		})
	}
}

// gm27NoPause is a configuration's [delivery] section that cuts the pause
// after a pace reply to (almost) nothing: for the tests that send replies
// of every kind through one proxy, one client after the other, and want
// each client's transaction to reach the upstream.
const gm27NoPause = "[delivery]\npace_suspend = \"1ns\"\npace_max_suspend = \"1ns\"\nquota_window = \"1ns\"\n"

// TestGm27ProxyHonoursPace: Gmail says "too fast" (gmail-replies.md, pace)
// to a proxy's session. The store-and-forward relay then opens no session
// to Gmail for pace_suspend (docs/queue.md, "Pacing"); a proxy that opens
// one for every client that comes next keeps hammering Gmail while it
// asks to be left alone.
func TestGm27ProxyHonoursPace(t *testing.T) {
	t.Parallel()
	later := foldReply("421", "4.7.0", "Try again later, closing connection.", 60)
	rate := foldReply("421", "4.7.28", "Gmail has detected an unusual rate of email originating from your IP address 127.0.0.1. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError", 62)
	for _, c := range []struct {
		name  string
		stage harness.Stage
		reply string
	}{
		{"later-greeting", harness.StageConnect, later},
		{"later-mail", harness.StageMail, later},
		{"rate-rcpt", harness.StageRcpt, rate},
		{"rate-data", harness.StageEndOfData, rate},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var refusing atomic.Bool
			refusing.Store(true)
			gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
				Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
					if stage != c.stage || !refusing.Load() {
						return harness.Response{}
					}
					return harness.Response{Reply: strings.ReplaceAll(c.reply, "{id}", "gm27p"), Fault: harness.Close421}
				}})
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true,
				config: "[enforce]\nban_delay = \"0s\"\n[delivery]\npace_suspend = \"4s\"\n"})
			start := time.Now()
			var heard []string
			for i := 0; i < 10; i++ {
				tx, err := sendFrom(r.addr(), fmt.Sprintf("127.27.1.%d", 10+i), "a@pace.example", []string{"p@gmail.test"}, gmailMessage("a@pace.example", "gm27 pace"))
				if err != nil && err != errRefused {
					t.Logf("client %d: %v", i, err)
				}
				heard = append(heard, heardReply(tx).String())
			}
			if n := gmail.Connections(); n > 2 {
				t.Errorf("Gmail said %q and the proxy opened %d sessions to it for 10 clients within seconds; want at most 2 (paced); clients heard %q", firstLine(c.reply), n, heard)
			}
			for _, h := range heard {
				if !strings.HasPrefix(h, "4") {
					t.Errorf("a client heard %q; want a temporary refusal", h)
				}
			}
			for _, e := range r.events("ban") {
				t.Errorf("ban %v; want nobody sanctioned for a pace reply", e.Fields)
			}
			// Once the pause has passed, the next client's mail goes.
			refusing.Store(false)
			time.Sleep(time.Until(start.Add(5 * time.Second)))
			tx, err := sendFrom(r.addr(), "127.27.1.99", "a@pace.example", []string{"p@gmail.test"}, gmailMessage("a@pace.example", "gm27 after"))
			if err != nil || tx.Final.code() != 250 {
				t.Errorf("after the pause: %v, heard %v; want 250", err, heardReply(tx))
			}
		})
	}
}

// TestGm27WelcomedByNameWithoutSwitch: relay-enforcer's manual lets the
// welcomelist name a partner by host name ("emails from a welcomelisted IP
// or hostname will be encapsulated"), and relaykeeper reads such a file
// unchanged. Without --client-names the relay looked up no client's name,
// so the pattern never matched, and the partner whose mail Gmail refused
// as spam was banned, without a word. A host-name pattern in the
// welcomelist turns the lookup on.
func TestGm27WelcomedByNameWithoutSwitch(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{false, true} {
		name := map[bool]string{false: "store", true: "proxy"}[proxy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			partner := map[bool]string{false: "127.0.0.127", true: "127.0.0.128"}[proxy]
			last := partner[len("127.0.0."):]
			dns := harness.StartDNS(t, last+".0.0.127.in-addr.arpa.  PTR  mx.partner27.test.\nmx.partner27.test.  A  "+partner+"\n")
			gmail := newFakeGmail(t)
			gmail.answer("carol@gmail.test", stData, gmailUnsolicited)
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, welcome: `^mx\.partner27\.test$` + "\n",
				extra: []string{"--client-names-server", dns.Addr()}})
			if _, err := sendFrom(r.addr(), partner, "alice@partner27.example", []string{"carol@gmail.test"}, gmailMessage("alice@partner27.example", "partner news")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if !waitFor(20*time.Second, func() bool { return len(enforceEvents(r, partner)) > 0 }) {
				t.Fatalf("the enforcer never acted; events %v", fieldsOf(r.events("")))
			}
			time.Sleep(500 * time.Millisecond)
			if es := enforceEvents(r, partner); actionOf(es) != "spare+encapsulate" {
				t.Errorf("events about the partner welcomelisted by name: %v; want spare and encapsulate", fieldsOf(es))
			}
		})
	}
}
