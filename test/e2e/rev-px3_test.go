package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPX3ProxyEnforcerLinesNameTheMessage: in proxy mode the enforcer's
// lines about a message refused at the final dot carry the message's id,
// the one on its proxy line, as in store-and-forward: "grep id=ID" finds
// everything that happened to a message (docs/maillog.md). They said
// id="" (ban, report) and orig="" (encapsulate).
func TestRevPX3ProxyEnforcerLinesNameTheMessage(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	gmail.answer("weird@gmail.test", stData, gmailUnknown)
	gmail.answer("dmarc@gmail.test", stData, gmailDMARC)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true})

	for _, c := range []struct{ ip, to, event, key string }{
		{"127.0.5.1", "spam@gmail.test", "ban", "id"},
		{"127.0.5.2", "weird@gmail.test", "report", "id"},
		{"127.0.5.3", "dmarc@gmail.test", "encapsulate", "orig"},
	} {
		if _, err := sendFrom(r.addr(), c.ip, "a@ok.example", []string{c.to}, gmailMessage("a@ok.example", c.event)); err != nil {
			t.Fatalf("%s: %v", c.to, err)
		}
		ip := c.ip
		byClient := func(e *maillog.Entry) bool { return hostOf(e.Get("client")) == ip }
		proxy := r.waitEvent("proxy", 5*time.Second, byClient)
		ev := r.waitEvent(c.event, 5*time.Second, byClient)
		if id := proxy.Get("id"); id == "" || ev.Get(c.key) != id {
			t.Errorf("%s line %v; want %s=%s, the proxy line's id", c.event, ev.Fields, c.key, id)
		}
	}
}

// TestRevPX3ProxyUpstreamLostLogged: an upstream that goes away in the
// middle of a proxied transaction is logged as an upstream refusal is
// (docs/maillog.md: "proxy rejections add from, to, relay"): at MAIL and
// RCPT one reject line with the sender, and at RCPT the recipient; in the
// content one proxy line, result=deferred, and no reject line besides.
// Before, the reject lines lacked from and to, and a message lost in its
// content was logged twice, so that relaykeeper stats counted it both as
// rejected and as proxied.
func TestRevPX3ProxyUpstreamLostLogged(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		script harness.Script
		event  string
		want   map[string]string
	}{
		{"mail", harness.Script{Mail: harness.Response{Fault: harness.Close}}, "reject",
			map[string]string{"stage": "mail", "from": "<alice@example.org>"}},
		{"rcpt", harness.Script{Rcpt: harness.Response{Fault: harness.Close}}, "reject",
			map[string]string{"stage": "rcpt", "from": "<alice@example.org>", "to": "<bob@example.net>"}},
		{"content", harness.Script{Content: harness.Response{After: 2000, Fault: harness.Reset}}, "proxy",
			map[string]string{"from": "<alice@example.org>", "result": "deferred"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tt.script)
			r, _ := startProxy(t, up.Addr())
			body := message(tt.name) + strings.Repeat("a line of the message to make it longer\r\n", 200)
			tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, body)
			if err != nil && err != errRefused {
				t.Fatalf("send: %v", err)
			}
			e := r.waitEvent(tt.event, 5*time.Second, nil)
			tt.want["relay"] = up.Addr()
			for k, v := range tt.want {
				if e.Get(k) != v {
					t.Errorf("%s line %v: %s=%q; want %q", e.Event, e.Fields, k, e.Get(k), v)
				}
			}
			if !strings.HasPrefix(e.Get("reply"), "451 4.4.1 upstream ") {
				t.Errorf("%s line reply=%q; want the 451 the client heard (%v)", e.Event, e.Get("reply"), tx)
			}
			r.waitEvent("disconnect", 5*time.Second, nil)
			if n := len(r.events("reject")) + len(r.events("proxy")); n != 1 {
				t.Errorf("%d reject and proxy lines; want one:\n%s", n, r.stderr())
			}
		})
	}
}

// TestRevPX3DeadDestinationRelayName: two messages for a domain that does
// not exist, one after the other, are logged with the same relay= (the
// destination as the first attempt named it). The second, refused from the
// destination's recent failure without a new lookup, said relay=smtp/DOMAIN,
// the scheduler's internal queue key, so grep relay=DOMAIN missed it.
func TestRevPX3DeadDestinationRelayName(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, "other.example. A 127.0.0.1\n")
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndns_server = %q\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-on-disconnect", "--no-bounces", "--config", cfg)
	for i, to := range []string{"bob@gone.example", "carol@gone.example"} {
		mustSend(t, r.addr(), "alice@example.org", []string{to}, message("to a domain that does not exist"))
		r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<"+to+">" })
		if i == 0 {
			continue
		}
		var relays []string
		for _, e := range r.events("delivery") {
			relays = append(relays, e.Get("relay"))
		}
		if len(relays) != 2 || relays[0] != relays[1] || strings.Contains(relays[1], "/") {
			t.Errorf("delivery lines' relays %q; want the same name twice, not a queue key", relays)
		}
	}
}

// TestRevPX3ProxyLoginRefusalAlerts: in proxy mode (the README's Gmail
// set-up, --as-proxy with --client-auth), a smarthost that refuses the
// relay's login is the administrator's to hear of, once per cause, as in
// store and forward (TestReview11AuthAlertOnce): docs/enforce.md's alert.
// The proxy told its clients 454 and logged their rejects, but the
// enforcer never heard of the refusal: no admin-alert line, no mail.
func TestRevPX3ProxyLoginRefusalAlerts(t *testing.T) {
	t.Parallel()
	up, pem, sec := wrongLoginUpstream(t)
	r := startEnforcer(t, up.addr(), enforceOpts{proxy: true,
		extra: []string{"--client-tls", "--client-auth", sec, "--client-tls-verify", pem}})
	for i := range 3 {
		tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("wrong password %d", i)))
		if err != nil && err != errRefused {
			t.Fatalf("send: %v", err)
		}
		if c := tx.Mail.code(); c/100 != 4 {
			t.Errorf("MAIL heard %q; want a 4xx: the relay's login is its own problem", tx.Mail)
		}
	}
	r.waitEvent("admin-alert", 10*time.Second, nil)
	// The scheduler's alert line too, which relaykeeper_alerts_total
	// {cause="alert"} and the dashboard's alerts count.
	r.waitEvent("alert", 5*time.Second, func(e *maillog.Entry) bool {
		return e.Get("relay") == up.addr() && strings.HasPrefix(e.Get("reply"), "535 ")
	})
	time.Sleep(500 * time.Millisecond)
	if a := r.events("admin-alert"); len(a) != 1 || a[0].Get("rule") != "gmail-auth-code" {
		t.Errorf("admin-alert lines %v; want one, rule gmail-auth-code", a)
	}
	for _, ev := range []string{"ban", "block", "encapsulate"} {
		for _, e := range r.events(ev) {
			t.Errorf("%s line: %v; want nobody sanctioned for the relay's own login", ev, e.Fields)
		}
	}

	// A greeting refusal no rule knows: nothing but the rejects, not a
	// report per client connection.
	refusing := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{Reply: "554 5.7.1 no service for you"}})
	r = startEnforcer(t, refusing.Addr(), enforceOpts{proxy: true})
	for i := range 2 {
		if _, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprint("refused ", i))); err != nil && err != errRefused {
			t.Fatalf("send: %v", err)
		}
	}
	r.waitEvent("disconnect", 5*time.Second, nil)
	time.Sleep(300 * time.Millisecond)
	for _, ev := range []string{"report", "admin-alert", "ban"} {
		for _, e := range r.events(ev) {
			t.Errorf("%s line: %v; want nothing for a greeting refusal no rule knows", ev, e.Fields)
		}
	}
}
