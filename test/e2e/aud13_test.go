package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// waitAPI polls a JSON API path until its body contains want.
func waitAPI(t *testing.T, url, want string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		body := scrape(t, url)
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never showed %q:\n%s", url, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAud13DashboardChecklist drives, in headless Chromium, the dashboard
// features issue 13 lists that the other browser tests leave out: the
// sender filter, a message's attempts and last reply, a confirmation
// cancelled (nothing done), a ban added with the form, a blocked domain
// added and removed with the form, and a destination's pace.
func TestAud13DashboardChecklist(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	const rate = "421-4.7.28 Gmail has detected an unusual rate of email originating from your IP address 127.0.0.1.\r\n" +
		"421 4.7.28 To protect our users from spam, email sent from your IP address has been temporarily rate limited."
	up := harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"slow@example.net": {Reply: "450 4.2.0 aud13 mailbox busy"},
		"rate@gmail.com":   {Reply: rate},
	}})
	r, base := dashboardRelay(t, up.Addr(), "--forward-on-disconnect")

	slow := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"slow@example.net"}, message("aud13 slow")).Final)
	waitAPI(t, base+"/api/queue/"+slow, "aud13 mailbox busy", 20*time.Second)
	bob := queuedID(t, mustSend(t, r.addr(), "bob@example.com", []string{"rate@gmail.com"}, message("aud13 rate")).Final)
	waitAPI(t, base+"/api/paces", "4.7.28", 20*time.Second)

	row := func(id string) string { return fmt.Sprintf(`#queue-table tr[data-id=%q]`, id) }
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The sender filter.
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css("%s", row(slow))),
		chromedp.WaitVisible(css("%s", row(bob))),
		setField(`#queue-filter input[name="sender"]`, "bob@"),
		chromedp.Click(css(`#queue-filter button`)),
		chromedp.WaitNotPresent(css("%s", row(slow))),
		chromedp.WaitVisible(css("%s", row(bob))),
		setField(`#queue-filter input[name="sender"]`, ""),
		chromedp.Click(css(`#queue-filter button`)),
		chromedp.WaitVisible(css("%s", row(slow))),
	)
	if err != nil {
		t.Fatalf("sender filter: %v", err)
	}

	// A message's envelope, attempts and last reply.
	err = chromedp.Do(ctx, clickNow(`%s td a`, row(slow)), chromedp.WaitVisible(css(`#message-header`)))
	if err != nil {
		t.Fatalf("message panel: %v", err)
	}
	panel := text(`#message dl`)
	for _, want := range []string{"alice@example.org", "Attempts1", "450 4.2.0 aud13 mailbox busy"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the message panel reads %q; want %q in it", panel, want)
		}
	}
	if rc := text(`#message table.recipients`); !strings.Contains(rc, "slow@example.net") {
		t.Errorf("the panel's recipients read %q", rc)
	}

	// Cancel leaves the message as it was.
	err = chromedp.Do(ctx,
		clickNow(`.act-hold[data-id=%q]`, slow),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-cancel`)),
		chromedp.WaitNotPresent(css(`#confirm[open]`)),
	)
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	time.Sleep(time.Second)
	if st := messageState(t, base, slow); st != "ready" {
		t.Errorf("message %s is %q after Hold was cancelled; want ready", slow, st)
	}

	// A ban added with the form, a block added and removed with the form.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#bans"),
		chromedp.WaitVisible(css(`body[data-loaded="bans"]`)),
		setField(`#ban-add input[name="ip"]`, "192.0.2.55"),
		setField(`#ban-add input[name="duration"]`, "2h"),
		setField(`#ban-add input[name="reason"]`, "aud13 by hand"),
		chromedp.Click(css(`#ban-add button`)),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="192.0.2.55"]`)),
		setField(`#block-add input[name="domain"]`, "spam.aud13.example"),
		setField(`#block-add input[name="reason"]`, "aud13 block"),
		chromedp.Click(css(`#block-add button`)),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`#blocks-table tr[data-domain="spam.aud13.example"]`)),
	)
	if err != nil {
		t.Fatalf("bans and blocks added: %v (error line %q)", err, text(`#error`))
	}
	if got := scrape(t, base+"/api/bans"); !strings.Contains(got, "192.0.2.55") || !strings.Contains(got, "aud13 by hand") {
		t.Errorf("the API does not list the ban added in the browser:\n%s", got)
	}
	if got := scrape(t, base+"/api/blocks"); !strings.Contains(got, "spam.aud13.example") {
		t.Errorf("the API does not list the block added in the browser:\n%s", got)
	}
	err = chromedp.Do(ctx,
		clickNow(`button.unblock[data-domain="spam.aud13.example"]`),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`#blocks-table tr[data-domain="spam.aud13.example"]`)),
	)
	if err != nil {
		t.Fatalf("block removed: %v", err)
	}
	if got := scrape(t, base+"/api/blocks"); strings.Contains(got, "spam.aud13.example") {
		t.Errorf("the block is still listed after removing it in the browser:\n%s", got)
	}

	// The destination's pace and the per-client rates.
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#rates"),
		chromedp.WaitVisible(css(`#paces-table tr[data-destination]`)),
		chromedp.WaitVisible(css(`body[data-loaded="rates"]`)),
	)
	if err != nil {
		t.Fatalf("rates page: %v", err)
	}
	if p := text(`#paces-table tbody`); !strings.Contains(p, "4.7.28") || !strings.Contains(p, "pace") {
		t.Errorf("the paces table reads %q; want the paced destination with Gmail's reply", p)
	}
	if rt := text(`#rates-table tbody`); !strings.Contains(rt, "127.0.0.1") {
		t.Errorf("the rates table reads %q; want the client's row", rt)
	}
}

// oauthFailing starts a relay, with the dashboard, whose oauth2 line's
// token endpoint refuses the refresh token (revoked), forwarding in mode
// (the switches before the upstream's address) to a Gmail-like server.
func oauthFailing(t *testing.T, mode ...string) (r *relay, base, spool string) {
	t.Helper()
	g := newGmailOAuth(t, time.Hour)
	g.setFail(true)
	dir := t.TempDir()
	secrets := filepath.Join(dir, "client.auth")
	line := fmt.Sprintf("client oauth2 me@gmail.com cid.apps.googleusercontent.com,GOCSPX-s3cret,1//0grefresh,%s/token\n", g.tokens.URL)
	if err := os.WriteFile(secrets, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	spool = filepath.Join(dir, "spool")
	args := append(mode, g.smtp.Addr().String(), "--log", "--admin-http", httpAddr, "--client-tls", "--client-tls-verify", g.ca,
		"--client-auth", secrets, "--interface", "127.0.0.1", "--spool-dir", spool)
	r = startRelay(t, "127.0.0.1", args...)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	return r, "http://" + httpAddr, spool
}

// alerted checks that the relay alerted about the refresh failure: an
// alert line, the dashboard's alerts and the metric.
func alerted(t *testing.T, r *relay, base string) {
	t.Helper()
	if a := r.waitEvent("alert", 5*time.Second, nil); !strings.Contains(a.Get("reply"), "invalid_grant") {
		t.Errorf("alert line %v; want the token endpoint's error", a.Fields)
	}
	if got := scrape(t, base+"/api/alerts"); !strings.Contains(got, "invalid_grant") {
		t.Errorf("the dashboard's alerts do not show the refresh failure:\n%s", got)
	}
	if got := series(scrape(t, base+"/metrics"), `relaykeeper_alerts_total{cause="alert"}`); got < 1 {
		t.Errorf(`relaykeeper_alerts_total{cause="alert"} = %v after a refresh failure; want 1`, got)
	}
}

// TestAud13OAuth2RefreshFailureAlerts: when the token endpoint refuses the
// refresh token (revoked), the message is deferred, never bounced, and the
// administrator is alerted as for any other fault of the relay's own
// set-up (a smarthost's AUTH refusal): an alert line in the mail log, an
// entry among the dashboard's alerts and
// relaykeeper_alerts_total{cause="alert"}, not only an error in the
// diagnostic log.
func TestAud13OAuth2RefreshFailureAlerts(t *testing.T) {
	t.Parallel()
	r, base, spool := oauthFailing(t, "--as-server", "--forward-on-disconnect", "--forward-to")
	mustSend(t, r.addr(), "alice@example.org", []string{"rcpt@example.net"}, message("aud13 oauth"))
	e := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<rcpt@example.net>" })
	if e.Get("result") != "deferred" {
		t.Errorf("delivery after a refresh failure: %v; want result=deferred", e.Fields)
	}
	alerted(t, r, base)
	if l := opsList(t, spool); len(l.Messages) != 1 || l.Messages[0].State != "ready" {
		t.Errorf("spool after a refresh failure = %+v; want the message, ready", l.Messages)
	}
}

// TestAud13OAuth2RefreshFailureAlertsProxy: the same in proxy mode, where
// the client hears a temporary refusal.
func TestAud13OAuth2RefreshFailureAlertsProxy(t *testing.T) {
	t.Parallel()
	r, base, _ := oauthFailing(t, "--as-proxy")
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"rcpt@example.net"}, message("aud13 oauth proxy"))
	if err == nil {
		t.Fatalf("the message was accepted without a token: %+v", tx)
	}
	t.Logf("client heard: %+v (%v)", tx, err)
	for _, rep := range append([]reply{tx.Mail, tx.Data, tx.Final}, tx.Rcpt...) {
		if len(rep) > 0 && strings.HasPrefix(rep[0], "5") {
			t.Errorf("the client heard a permanent refusal %q for the relay's own credentials", rep)
		}
	}
	alerted(t, r, base)
}
