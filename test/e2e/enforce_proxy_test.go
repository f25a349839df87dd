package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestEnforceProxyReplyRewriting: through the proxy, Gmail's temporary
// "unsolicited mail ... rate limited" becomes a permanent 554 with the
// same text (and bans the client), a recipient problem (550 5.1.1 at RCPT)
// reaches the client unchanged and triggers nothing, and an unknown 550 is
// passed on unchanged and reported.
func TestEnforceProxyReplyRewriting(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("rate@gmail.test", stData, gmailIPRateLimited)
	gmail.answer("nouser@gmail.test", stRcpt, gmailNoSuchUser)
	gmail.answer("weird@gmail.test", stData, gmailUnknown)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true})

	tx, err := sendFrom(r.addr(), "127.0.3.1", "a@ok.example", []string{"rate@gmail.test"}, gmailMessage("a@ok.example", "rate limited"))
	sent := gmail.lastSent("rate@gmail.test")
	if want := permanentHeard(sent); err != nil || sent == "" || !slices.Equal(tx.Final, want) {
		t.Errorf("421 rate limited: client heard %q (%v); want %q", tx.Final, err, want)
	}
	ban := r.waitEvent("ban", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.3.1" })
	if ban.Get("rule") != "gmail-ip-rate" || ban.Get("reply") != joinedReply(sent) {
		t.Errorf("ban line %v; want rule=gmail-ip-rate and Gmail's reply", ban.Fields)
	}

	tx, err = sendFrom(r.addr(), "127.0.3.2", "a@ok.example", []string{"nouser@gmail.test"}, gmailMessage("a@ok.example", "no such user"))
	sent = gmail.lastSent("nouser@gmail.test")
	if err != nil || len(tx.Rcpt) != 1 || sent == "" || !slices.Equal(tx.Rcpt[0], replyLines(sent)) || tx.Data != nil {
		t.Errorf("550 5.1.1: client heard %q at RCPT (%v); want Gmail's reply unchanged, %q", tx.Rcpt, err, replyLines(sent))
	}

	tx, err = sendFrom(r.addr(), "127.0.3.3", "a@ok.example", []string{"weird@gmail.test"}, gmailMessage("a@ok.example", "unknown"))
	sent = gmail.lastSent("weird@gmail.test")
	if err != nil || sent == "" || !slices.Equal(tx.Final, replyLines(sent)) {
		t.Errorf("unknown 550: client heard %q (%v); want Gmail's reply unchanged, %q", tx.Final, err, replyLines(sent))
	}
	rep := r.waitEvent("report", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.3.3" })
	if rep.Get("why") != "no rule knows this reply" || rep.Get("to") != "<weird@gmail.test>" || rep.Get("reply") != joinedReply(sent) {
		t.Errorf("report line %v; want why=\"no rule knows this reply\" to=<weird@gmail.test> and Gmail's reply", rep.Fields)
	}
	time.Sleep(300 * time.Millisecond)
	for ip, want := range map[string]string{"127.0.3.1": "ban", "127.0.3.2": "none", "127.0.3.3": "report"} {
		if got := actionOf(enforceEvents(r, ip)); got != want {
			t.Errorf("events about %s: %v; want %s", ip, fieldsOf(enforceEvents(r, ip)), want)
		}
	}
}

// TestEnforceBanDelay: a ban takes effect ban_delay after the refusal
// (docs/enforce.md: "10 seconds after it is added"). With ban_delay 2s and
// the refusal at .6-.8 of a second, the ban must not start before 2s have
// passed. Also the proxy's ban: the client's next connection hears 554.
func TestEnforceBanDelay(t *testing.T) {
	t.Parallel()
	_, r := spamGmailRelay(t, true, "2s")
	const ip = "127.0.4.1"
	// Refuse at about .6 of a second: a delay cut to whole seconds shows.
	for ns := time.Now().Nanosecond(); ns < 600e6 || ns > 800e6; ns = time.Now().Nanosecond() {
		time.Sleep(10 * time.Millisecond)
	}
	tx, err := sendFrom(r.addr(), ip, "a@ok.example", []string{"spam@gmail.test"}, gmailMessage("a@ok.example", "spam"))
	if err != nil || tx.Final.code() != 550 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	proxied := r.waitEvent("proxy", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") != "" })
	// Right after the refusal the client is still welcome.
	c, greet, err := dialFrom(r.addr(), ip)
	if err == nil {
		c.Close()
	}
	if greet.code() != 220 {
		t.Errorf("greeting right after the refusal: %q (%v); want 220 (the ban waits ban_delay)", greet, err)
	}
	ban := r.waitEvent("ban", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip })
	if d := ban.Time.Sub(proxied.Time); d < 2*time.Second-50*time.Millisecond {
		t.Errorf("ban in force %v after the refusal (refused at %s, ban line at %s); want ban_delay, 2s",
			d.Round(time.Millisecond), proxied.Time.Format("15:04:05.000"), ban.Time.Format("15:04:05.000"))
	}
	_, greet, _ = dialFrom(r.addr(), ip)
	if greet.code() != 554 {
		t.Errorf("greeting once banned: %q; want 554", greet)
	}
}
