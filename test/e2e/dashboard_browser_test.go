package e2e

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// -screenshots DIR (or $RELAYKEEPER_SCREENSHOTS) writes a PNG of every
// dashboard page there: `go test ./test/e2e -run TestDashboardInBrowser
// -screenshots $PWD/docs/screenshots` renews the documentation's.
var screenshotDir = flag.String("screenshots", os.Getenv("RELAYKEEPER_SCREENSHOTS"), "write the dashboard's screenshots to this directory")

// browser starts headless Chromium for the test, with the extra options
// given, or skips (fails with CI=true) when it is not installed.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/test-deps.sh installs it)")
		}
		t.Skip("chromium is not installed (run scripts/test-deps.sh)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// dashboardRelay starts a relay forwarding to upstream with the dashboard
// (--admin-http) on a port of its own, waits for it and returns its base
// URL. No --poll: messages stay queued for the page to show.
func dashboardRelay(t *testing.T, upstream string, extra ...string) (r *relay, base string) {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r = startRelay(t, "127.0.0.1", append([]string{"--as-server", "--forward-to", upstream, "--interface", "127.0.0.1",
		"--admin-http", httpAddr, "--spool-dir", t.TempDir()}, extra...)...)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	return r, "http://" + httpAddr
}

// hostileSubject would run script if the page ever parsed a header as HTML.
const hostileSubject = `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// the built binary: the queued message is listed, holding it (after the
// confirmation) shows it held, its hostile header stays text, and a ban is
// removed. It keeps a screenshot of each page.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())

	body := "From: \"" + hostileSubject + "\" <evil@example.org>\nTo: <bob@example.net>\nSubject: " + hostileSubject +
		"\nMessage-ID: <hostile@e2e.test>\n\nhello\n"
	tx := mustSend(t, r.addr(), "evil@example.org", []string{"bob@example.net"}, body)
	id := queuedID(t, tx.Final)
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.com"}, message("an ordinary message"))
	// A ban to remove, added by a tool (no browser: no token needed).
	resp, err := http.Post(base+"/api/bans", "application/json", strings.NewReader(`{"ip":"192.0.2.7","reason":"test ban"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/bans: %v %v", resp, err)
	}
	resp.Body.Close()

	shots, shot := screenshots(t)
	row := fmt.Sprintf(`#queue-table tr[data-id=%q]`, id)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css("%s", row)),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row)),
		shot("queue"),
		clickNow(`.act-hold[data-id=%q]`, id),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		shot("confirm"),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`%s[data-state="held"]`, row)),
		clickNow(`%s td a`, row),
		chromedp.WaitVisible(css(`#message-header`)),
		shot("message"),
	)
	if err != nil {
		t.Fatalf("queue page: %v", err)
	}
	header, err := chromedp.Run(ctx, chromedp.Text(css(`#message-header`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(header, "Subject: "+hostileSubject) {
		t.Errorf("the header panel shows %q; want the hostile Subject as text", header)
	}
	imgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if imgs != 0 || title != "relaykeeper" {
		t.Errorf("hostile header became markup: %d img/script elements, title %q", imgs, title)
	}
	if st := messageState(t, base, id); st != "held" {
		t.Errorf("message %s is %q after Hold in the browser; want held", id, st)
	}
	// The filters: held only, then by destination.
	err = chromedp.Do(ctx,
		setField(`#queue-filter select[name="state"]`, "held"),
		chromedp.Click(css(`#queue-filter button`)),
		chromedp.WaitNotPresent(css(`#queue-table tr[data-state="ready"]`)),
		chromedp.WaitVisible(css(`%s[data-state="held"]`, row)),
		setField(`#queue-filter select[name="state"]`, ""),
		setField(`#queue-filter input[name="recipient"]`, "@example.com"),
		chromedp.Click(css(`#queue-filter button`)),
		chromedp.WaitNotPresent(css("%s", row)),
		chromedp.WaitVisible(css(`#queue-table tr[data-state="ready"]`)),
		setField(`#queue-filter input[name="recipient"]`, ""),
	)
	if err != nil {
		t.Fatalf("queue filters: %v", err)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#bans"),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="192.0.2.7"]`)),
		shot("bans-remove"),
		clickNow(`button.unban[data-ip="192.0.2.7"]`),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`#bans-table tr[data-ip="192.0.2.7"]`)),
	)
	if err != nil {
		t.Fatalf("bans page: %v", err)
	}
	if got := scrape(t, base+"/api/bans"); strings.Contains(got, "192.0.2.7") {
		t.Errorf("the ban is still listed by the API after removing it in the browser:\n%s", got)
	}
	// The other pages load and render.
	for _, tab := range []string{"actions", "rates", "activity", "alerts"} {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/#"+tab),
			chromedp.WaitVisible(css(`body[data-loaded=%q]`, tab)),
		); err != nil {
			t.Errorf("%s page: %v", tab, err)
		}
	}
	t.Logf("screenshots in %s", shots)
}

// screenshots returns the directory the test's screenshots go to (a
// temporary one unless -screenshots says otherwise) and an action that
// saves the page there as NAME.png.
func screenshots(t *testing.T) (string, func(name string) chromedp.Action[chromedp.Void]) {
	dir := t.TempDir()
	if *screenshotDir != "" {
		dir = *screenshotDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg) // 100: PNG
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
		})
	}
}

// setField sets a form field's value as a person choosing or typing it
// would leave it.
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; return true; })()`, sel, value))(ctx, tg)
		return err
	})
}

func css(format string, a ...any) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(format, a...)) }

// clickNow waits for an element and clicks it in one evaluation. The
// page's refresh replaces the tables' rows: a node that chromedp.Click
// found could be gone when it clicked ("Could not find node with given id",
// clean-clone CI).
func clickNow(format string, a ...any) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true })()`,
		fmt.Sprintf(format, a...)))
}

// TestDashboardEnforcerPages: after Gmail calls one client's message spam,
// the dashboard shows the ban with Gmail's reply among the enforcer's
// actions, both clients' rejection rates, the relay's rate alert (1 refusal
// in 24 replies is over 2% of at least 20) and the traffic plot.
func TestDashboardEnforcerPages(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	spam := "550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely unsolicited mail. " +
		"To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. Please visit\r\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n550 5.7.1 for more information. " +
		"a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp"
	// Gmail judges the message after its final dot; a ban reply before
	// the content sanctions nobody (docs/enforce.md).
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, _ string) harness.Response {
		if st == harness.StageEndOfData && slices.ContainsFunc(tx.Rcpts, func(r harness.Rcpt) bool { return r.Addr == "spamtrap@gmail.com" }) {
			return harness.Response{Reply: spam}
		}
		return harness.Response{}
	}})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startEnforcer(t, up.Addr(), enforceOpts{extra: []string{"--admin-http", httpAddr}})
	harness.WaitPort(t, httpAddr, 5*time.Second)
	base := "http://" + httpAddr

	for i := range 22 {
		if _, err := sendFrom(r.addr(), "127.0.0.2", "news@example.org", []string{fmt.Sprintf("reader%d@gmail.com", i)},
			message(fmt.Sprintf("newsletter %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	sendFrom(r.addr(), "127.0.0.3", "shop@example.com", []string{"buyer@gmail.com"}, message("your order"))
	sendFrom(r.addr(), "127.0.0.3", "shop@example.com", []string{"spamtrap@gmail.com"}, message("cheap pills"))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(scrape(t, base+"/api/alerts"), "relay_rejection_rate") {
		if time.Now().After(deadline) {
			t.Fatalf("no rate alert:\n%s\n%s", scrape(t, base+"/api/rates"), scrape(t, base+"/api/actions"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	_, shot := screenshots(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#actions"),
		chromedp.WaitVisible(css(`#actions-table tr[data-event="ban"]`)),
		shot("actions"),
		chromedp.Navigate(base+"/#rates"),
		chromedp.WaitVisible(css(`body[data-loaded="rates"]`)),
		shot("rates"),
		chromedp.Navigate(base+"/#alerts"),
		chromedp.WaitVisible(css(`#alerts-list li[data-cause="relay_rejection_rate"]`)),
		shot("alerts"),
		chromedp.Navigate(base+"/#activity"),
		chromedp.WaitVisible(css(`#plot polyline[data-series="delivered"]`)),
		shot("activity"),
		chromedp.Navigate(base+"/#bans"),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="127.0.0.3"]`)),
		shot("bans"),
	)
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	err = chromedp.Do(ctx, chromedp.Navigate(base+"/#actions"), chromedp.WaitVisible(css(`#actions-table tr[data-event="ban"]`)))
	if err != nil {
		t.Fatal(err)
	}
	// One evaluation: the page's refresh replaces the rows, and a node
	// found by one command may be gone by the next.
	banRow, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#actions-table tr[data-event="ban"]')?.textContent ?? ''`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(banRow, "127.0.0.3") || !strings.Contains(banRow, "likely unsolicited mail") {
		t.Errorf("the ban's row reads %q; want the client and Gmail's reply", banRow)
	}
	// The same events in the metrics.
	body := scrape(t, base+"/metrics")
	for name, want := range map[string]float64{
		`relaykeeper_upstream_verdicts_total{class="5xx",verdict="ban"}`: 1,
		`relaykeeper_enforce_actions_total{action="ban"}`:                1,
		`relaykeeper_bans_active`:                                        1,
		`relaykeeper_alerts_total{cause="relay_rejection_rate"}`:         1,
		`relaykeeper_upstream_replies_total{class="5xx"}`:                1,
	} {
		if got := series(body, name); got != want {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}
	rates := scrape(t, base+"/api/rates")
	for _, want := range []string{`"client": "127.0.0.2"`, `"client": "127.0.0.3"`, `"client": "*"`} {
		if !strings.Contains(rates, want) {
			t.Errorf("/api/rates lacks %s:\n%s", want, rates)
		}
	}
}

// messageState asks the JSON API for a message's state.
func messageState(t *testing.T, base, id string) string {
	t.Helper()
	body := scrape(t, base+"/api/queue/"+id)
	const key = `"state": "`
	i := strings.Index(body, key)
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	return rest[:strings.IndexByte(rest, '"')]
}
