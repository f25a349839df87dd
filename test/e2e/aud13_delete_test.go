package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud13DashboardDeleteShownMessage: deleting the message whose panel
// is open never makes the page fetch it again. A refresh whose queue
// listing came back while the deletion was under way re-read the open
// message, a 404 on the console: TestDashboardHostileEnvelopeAndActions
// failed so under load. Here the page's fetch is wrapped so that a queue
// listing answers only once the DELETE is done, and the DELETE's answer
// reaches the page half a second later: the order that load made.
func TestAud13DashboardDeleteShownMessage(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("to delete")).Final)
	row := `#queue-table tr[data-id="` + id + `"]`
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row)),
		clickNow(`%s td a`, row),
		chromedp.WaitVisible(css(`#message-header`)),
	)
	if err != nil {
		t.Fatalf("queue page: %v", err)
	}
	const wrap = `(() => {
		window.aud13NotFound = [];
		const orig = window.fetch;
		let release;
		const gate = new Promise(r => { release = r; });
		window.fetch = async (path, opts) => {
			const resp = await orig(path, opts);
			if (new URL(path, location.href).pathname === '/api/queue') await gate;
			if (opts && opts.method === 'DELETE') {
				release();
				await new Promise(r => setTimeout(r, 500));
			}
			if (resp.status === 404) window.aud13NotFound.push(String(path));
			return resp;
		};
		loadQueue();
		return true;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](wrap)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		clickNow(`.act-delete[data-id=%q]`, id),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`%s`, row)),
	)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	time.Sleep(time.Second) // the held-back listing and what it set off
	notFound, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.aud13NotFound`))
	if err != nil {
		t.Fatal(err)
	}
	if len(notFound) != 0 {
		t.Errorf("after deleting %s the page fetched %q: 404", id, notFound)
	}
	if got := scrape(t, base+"/api/queue"); strings.Contains(got, id) {
		t.Errorf("message %s is still queued after Delete in the browser", id)
	}
}
