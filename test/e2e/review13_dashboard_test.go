package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// hostileRcpt is a valid quoted local part (RFC 5321 section 4.1.2) that
// would run script if the page parsed an envelope address as HTML.
const hostileRcpt = `"<img src=x onerror=document.title='pwned'>"@example.net`

// TestReview13DashboardHostileEnvelope: the envelope addresses and the
// upstream's reply are attacker-controlled too, not only the header. A
// message with a hostile quoted recipient, deferred by an upstream whose
// reply carries markup, is shown as text in the queue and in the message
// view; then release and delete, each confirmed in the browser, change the
// spool; and the API refuses a browser's change without the page's token.
func TestReview13DashboardHostileEnvelope(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	hostileReply := `450 4.2.0 <script>document.title='pwned'</script><img src=x onerror=document.title='pwned'> try later`
	up := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: hostileReply}})
	r, base := dashboardRelay(t, up.Addr())

	tx := mustSend(t, r.addr(), "a'onfocus=alert&{x}@example.org", []string{hostileRcpt}, message("hostile envelope"))
	id := queuedID(t, tx.Final)
	// One attempt, so that the hostile reply is the message's last reply.
	resp, err := http.Post(base+"/api/flush", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := scrape(t, base+"/api/queue/"+id); !strings.Contains(got, "try later") {
		t.Fatalf("after a flush the message has not the upstream's reply:\n%s", got)
	}

	// A browser's change without the token is refused (403), same origin
	// or not; the token is for the page alone.
	for _, h := range []string{"Origin: " + base, "Origin: http://evil.example", "Sec-Fetch-Site: cross-site"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/queue/"+id+"/hold", nil)
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST hold with %q and no token = %d; want 403", h, resp.StatusCode)
		}
	}
	if st := messageState(t, base, id); st != "ready" {
		t.Fatalf("message %s is %q after refused requests; want ready", id, st)
	}

	row := fmt.Sprintf(`#queue-table tr[data-id=%q]`, id)
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row)),
	)
	if err != nil {
		t.Fatalf("queue page: %v", err)
	}
	rowText, err := chromedp.Run(ctx, chromedp.Text(css("%s", row)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<img src=x onerror=", "a'onfocus=alert&{x}@example.org", "<script>"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("the queue row reads %q; want %q in it as text", rowText, want)
		}
	}
	err = chromedp.Do(ctx,
		clickNow(`%s td a`, row),
		chromedp.WaitVisible(css(`#message-header`)),
	)
	if err != nil {
		t.Fatalf("message view: %v", err)
	}
	view, err := chromedp.Run(ctx, chromedp.Text(css(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(view, hostileRcpt) || !strings.Contains(view, "try later") {
		t.Errorf("the message view lacks the recipient or the reply as text:\n%s", view)
	}
	marks, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if marks != 0 || title != "relaykeeper" {
		t.Errorf("hostile envelope or reply became markup: %d img/script elements, title %q", marks, title)
	}

	// Hold, release and delete, each confirmed.
	for _, step := range []struct{ action, state string }{{"hold", "held"}, {"release", "ready"}} {
		err = chromedp.Do(ctx,
			chromedp.Navigate(base+"/#queue"),
			chromedp.WaitVisible(css("%s", row)),
			clickNow(`.act-%s[data-id=%q]`, step.action, id),
			chromedp.WaitVisible(css(`#confirm[open]`)),
			chromedp.Click(css(`#confirm-ok`)),
			chromedp.WaitVisible(css(`%s[data-state=%q]`, row, step.state)),
		)
		if err != nil {
			t.Fatalf("%s in the browser: %v", step.action, err)
		}
		if st := messageState(t, base, id); st != step.state {
			t.Errorf("after %s in the browser the API says %q; want %q", step.action, st, step.state)
		}
	}
	err = chromedp.Do(ctx,
		clickNow(`.act-delete[data-id=%q]`, id),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css("%s", row)),
	)
	if err != nil {
		t.Fatalf("delete in the browser: %v", err)
	}
	resp, err = http.Get(base + "/api/queue/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the deleted message = %d; want 404", resp.StatusCode)
	}
}
