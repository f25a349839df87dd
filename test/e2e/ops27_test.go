package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps27DashboardWithoutJavaScript opens the dashboard in Chromium
// with JavaScript off, as a text browser or a locked-down one sees it:
// the page showed a title and six tabs that did nothing. Now it shows the
// queue (the hostile sender as text), the bans and the blocked domains,
// hides the dead tabs, and logs nothing to the console.
func TestOps27DashboardWithoutJavaScript(t *testing.T) {
	t.Parallel()
	ctx := browser(t, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	const hostile = `"<img src=x onerror=document.title='pwned'>"@example.org`
	tx := mustSend(t, r.addr(), hostile, []string{"bob@example.net"}, message("no script"))
	id := queuedID(t, tx.Final)
	resp, err := http.Post(base+"/api/bans", "application/json", strings.NewReader(`{"ip":"192.0.2.7","reason":"test ban"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/bans: %v %v", resp, err)
	}
	resp.Body.Close()

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
				console = append(console, string(m.Type)+": "+m.String())
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx,
		chromedp.WaitVisible(css(`#static-queue`)),
		chromedp.WaitNotVisible(css(`#tabs`)),
	); err != nil {
		t.Fatalf("the page without JavaScript: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(css(`#static-view`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id, "ready", hostile[1:30], "pending <bob@example.net>", "192.0.2.7", "test ban", "1 messages"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page without JavaScript lacks %q:\n%s", want, text)
		}
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "relaykeeper" {
		t.Errorf("title %q, %v; want relaykeeper (a value ran as HTML?)", title, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(console) > 0 {
		t.Errorf("console: %s", strings.Join(console, "\n"))
	}
}
