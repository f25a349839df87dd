package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps25DashboardAfterTraffic: after real traffic (an upstream that
// defers one destination, Gmail calling one client's message spam, which
// bans it and holds its other queued mail, a client with a UTF-8 HELO and
// a hostile sender) every page of the dashboard loads in Chromium without
// a console error, shows the queue, the ban and the enforcer's action, and
// its numbers agree with `queue list --json` and /metrics.
func TestOps25DashboardAfterTraffic(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	spam := "550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely unsolicited mail. " +
		"To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. Please visit\r\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n550 5.7.1 for more information. " +
		"a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp"
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageRcpt && strings.Contains(arg, "@defer.example") {
			return harness.Response{Reply: "451 4.3.0 Try again later"}
		}
		if st == harness.StageEndOfData && slices.ContainsFunc(tx.Rcpts, func(r harness.Rcpt) bool { return r.Addr == "spamtrap@gmail.com" }) {
			return harness.Response{Reply: spam}
		}
		return harness.Response{}
	}})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startEnforcer(t, up.Addr(), enforceOpts{
		config: "[enforce]\nban_delay = \"2s\"\n",
		extra:  []string{"--admin-http", httpAddr}})
	harness.WaitPort(t, httpAddr, 5*time.Second)
	base := "http://" + httpAddr

	const hostile = `"<img src=x onerror=document.title='pwned'>\"q"@example.org`
	for i := range 3 {
		if _, err := sendFrom(r.addr(), "127.0.0.2", "news@example.org", []string{fmt.Sprintf("r%d@defer.example", i)},
			message(fmt.Sprintf("deferred %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := dialFrom(r.addr(), "127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := c.cmd("EHLO héllo-ü.example"); err != nil || rep.code() != 250 {
		t.Fatalf("EHLO: %v %v", rep, err)
	}
	long := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + ".example"
	for _, from := range []string{hostile, long} {
		if tx, err := c.send(from, []string{"x@defer.example"}, message("hostile")); err != nil {
			t.Fatalf("send from %s: %v %+v", from, err, tx)
		}
	}
	c.cmd("QUIT")
	c.Close()
	// The spam, then (within the ban delay) more of the same client's
	// mail, held when the ban takes effect.
	sendFrom(r.addr(), "127.0.0.3", "shop@example.com", []string{"spamtrap@gmail.com"}, message("cheap pills"))
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<spamtrap@gmail.com>" })
	sendFrom(r.addr(), "127.0.0.3", "shop@example.com", []string{"late@defer.example"}, message("after the spam"))
	r.waitEvent("ban", 15*time.Second, nil)
	r.waitEvent("hold", 10*time.Second, nil)

	var mu sync.Mutex
	var console []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				console = append(console, string(m.Type)+": "+m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	for _, tab := range []string{"queue", "bans", "actions", "rates", "activity", "alerts"} {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/#"+tab),
			chromedp.WaitVisible(css(`body[data-loaded=%q]`, tab)),
		); err != nil {
			t.Errorf("%s page: %v", tab, err)
		}
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#bans"),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="127.0.0.3"]`)),
		chromedp.Navigate(base+"/#actions"),
		chromedp.WaitVisible(css(`#actions-table tr[data-event="ban"]`)),
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`#queue-table tr[data-state="held"]`)),
	)
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}

	// The queue as the command lists it.
	out, _, code := opsCmd(t, "", "queue", "list", "--json", "--spool-dir", r.spool)
	if code != 0 {
		t.Fatalf("queue list --json: exit %d", code)
	}
	var list struct {
		Messages []struct{ ID, State, Sender, Helo string }
		Requests int
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("queue list --json is not JSON: %v\n%s", err, out)
	}
	byState := map[string]int{}
	for _, m := range list.Messages {
		byState[m.State]++
	}
	if byState["held"] != 1 || byState["ready"] != 5 {
		t.Errorf("queue list: %v; want 5 ready (deferred) and 1 held (banned client)\n%s", byState, out)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const rows = [...document.querySelectorAll('#queue-table tbody tr[data-id]')];
		return JSON.stringify({rows: rows.map(r => [r.dataset.id, r.dataset.state, r.children[3].textContent]),
			summary: document.getElementById('queue-summary').textContent,
			status: document.getElementById('status').textContent,
			markup: document.querySelectorAll('main img, main script').length, title: document.title});
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Rows    [][3]string
		Summary string
		Status  string
		Markup  int
		Title   string
	}
	if err := json.Unmarshal([]byte(page), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown.Rows) != list.Requests || !strings.HasPrefix(shown.Summary, fmt.Sprintf("%d message(s)", list.Requests)) {
		t.Errorf("the page lists %d rows (%q); queue list has %d", len(shown.Rows), shown.Summary, list.Requests)
	}
	for _, m := range list.Messages {
		i := slices.IndexFunc(shown.Rows, func(row [3]string) bool { return row[0] == m.ID })
		if i < 0 {
			t.Errorf("message %s (%s) is not on the page", m.ID, m.State)
			continue
		}
		if shown.Rows[i][1] != m.State || shown.Rows[i][2] != m.Sender {
			t.Errorf("the page shows %s as %q from %q; queue list says %q from %q", m.ID, shown.Rows[i][1], shown.Rows[i][2], m.State, m.Sender)
		}
	}
	if shown.Markup != 0 || shown.Title != "relaykeeper" {
		t.Errorf("a hostile sender became markup: %d img/script, title %q", shown.Markup, shown.Title)
	}
	metrics := scrape(t, base+"/metrics")
	for _, st := range []string{"ready", "held"} {
		want := fmt.Sprintf("%d %s", byState[st], st)
		if !strings.Contains(shown.Status, want) {
			t.Errorf("the status line says %q; want %q as queue list has it", shown.Status, want)
		}
		if got := series(metrics, fmt.Sprintf(`relaykeeper_queue_messages{state=%q}`, st)); got != float64(byState[st]) {
			t.Errorf("relaykeeper_queue_messages{state=%q} = %v; queue list has %d", st, got, byState[st])
		}
	}
	if got := series(metrics, "relaykeeper_bans_active"); got != 1 {
		t.Errorf("relaykeeper_bans_active = %v; want 1", got)
	}
	deferred := 0
	for _, e := range r.events("delivery") {
		if e.Get("result") == "deferred" {
			deferred++
		}
	}
	for _, name := range []string{`relaykeeper_deliveries_total{destination="defer.example",result="deferred"}`,
		`relaykeeper_delivery_delay_seconds_count{result="deferred"}`, `relaykeeper_upstream_replies_total{class="4xx"}`} {
		if got := series(metrics, name); got != float64(deferred) {
			t.Errorf("%s = %v; the mail log has %d deferrals (451 from the upstream)", name, got, deferred)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		t.Errorf("console: %s", m)
	}
}

// TestOps25DashboardDamagedMessages: files E-MailRelay (or a crash) left
// damaged in a running relay's spool, a torn envelope and an envelope whose
// content is gone, are listed with their problem, and the page offers what
// works on them: delete (docs/queue.md: "queue delete removes it at once
// (the other commands need the envelope)"). It offered hold and retry,
// which can only fail, with a 500.
func TestOps25DashboardDamagedMessages(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	envelope := strings.Join([]string{"X-MailRelay-Format: #2821.8", "X-MailRelay-Content: 7bit",
		"X-MailRelay-From: old@example.org", "X-MailRelay-ToCount: 1", "X-MailRelay-To-Remote: r@example.net",
		"X-MailRelay-Authentication: ", "X-MailRelay-Client: 192.0.2.1:1234", "X-MailRelay-ClientCertificate: ",
		"X-MailRelay-MailFromAuthIn: ", "X-MailRelay-MailFromAuthOut: ", "X-MailRelay-ForwardTo: ",
		"X-MailRelay-ForwardToAddress: ", "X-MailRelay-ClientAccountSelector: ", "X-MailRelay-Utf8MailboxNames: 0",
		"X-MailRelay-End: 1", "X-MailRelay-Reason: 550 5.7.1 refused", ""}, "\r\n")
	const torn, bare = "emailrelay.4242.1700000000.1", "emailrelay.4242.1700000000.2"
	spool := r.spool
	writeFile(t, spool, torn+".content", "Received: x\r\n\r\nbody\r\n", 0o600)
	writeFile(t, spool, torn+".envelope.bad", envelope[:200], 0o600)
	writeFile(t, spool, bare+".envelope.bad", envelope, 0o600)

	row := func(id string) string { return fmt.Sprintf(`#queue-table tr[data-id=%q]`, id) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css("%s", row(torn))),
		chromedp.WaitVisible(css("%s", row(bare))),
	); err != nil {
		t.Fatalf("queue page: %v", err)
	}
	for _, id := range []string{torn, bare} {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`[...document.querySelectorAll('%s td.actions button')].map(b => b.textContent).join(' ')`, row(id))))
		if err != nil {
			t.Fatal(err)
		}
		if got != "delete" {
			t.Errorf("the page offers %q for damaged message %s; want delete alone", got, id)
		}
	}
	if err := chromedp.Do(ctx,
		clickNow(`.act-delete[data-id=%q]`, torn),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css("%s", row(torn))),
	); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#error').textContent`)); errText != "" {
		t.Errorf("the page shows an error after deleting a damaged message: %q", errText)
	}
}

// TestOps25DashboardPasswordInURL: with --admin-password-file, a
// dashboard opened as http://admin:PASSWORD@HOST/ (a bookmark, a kiosk, the
// way many open a Basic-protected page) loaded its HTML but none of its
// data: each fetch() resolved its path against the page's URL, with the
// credentials in it, and Chromium refuses such a request ("Request cannot
// be constructed from a URL that includes credentials"), which the page
// showed as its error. The page and its changes work as they do after the
// browser's own password prompt.
func TestOps25DashboardPasswordInURL(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	const password = "ops25-s3cret"
	pw := writeFile(t, t.TempDir(), "admin.password", password+"\n", 0o600)
	r, base := dashboardRelay(t, up.Addr(), "--admin-password-file", pw)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("behind a password")).Final)

	withPassword := strings.Replace(base, "http://", "http://admin:"+password+"@", 1)
	row := fmt.Sprintf(`#queue-table tr[data-id=%q]`, id)
	// A bound of its own, so that the page's error can still be read.
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := chromedp.Do(wait,
		chromedp.Navigate(withPassword+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row)),
		clickNow(`.act-hold[data-id=%q]`, id),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`%s[data-state="held"]`, row)),
	)
	errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#error')?.textContent ?? ''`))
	if err != nil {
		t.Fatalf("the dashboard opened with the password in its URL: %v; the page's error: %q", err, errText)
	}
	if errText != "" {
		t.Errorf("the page shows an error: %q", errText)
	}
}
