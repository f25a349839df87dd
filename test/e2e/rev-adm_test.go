package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestDashboardHostileEnvelopeAndActions drives the dashboard in headless
// Chromium with a hostile envelope (the sender and a recipient are quoted
// local parts full of markup, which SMTP allows) and carries out every
// queue action through the page: hold, release, retry and delete. No page
// may write an error or throw an exception on the console, and no envelope
// text may become markup.
func TestDashboardHostileEnvelopeAndActions(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())

	const (
		sender    = `"<img src=x onerror=document.title='pwned'>"@example.org`
		recipient = `"<script>document.title='pwned'</script>"@example.net`
	)
	hostile := queuedID(t, mustSend(t, r.addr(), sender, []string{recipient}, message("hostile envelope")).Final)
	plain := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.com"}, message("plain")).Final)

	var mu sync.Mutex
	var console []string
	messages := chromedp.Console(ctx) // subscribed before the page loads
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				console = append(console, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()

	row := func(id string) string { return fmt.Sprintf(`#queue-table tr[data-id=%q]`, id) }
	act := func(action, id, state string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			clickNow(`.act-%s[data-id=%q]`, action, id),
			chromedp.WaitVisible(css(`#confirm[open]`)),
			chromedp.Click(css(`#confirm-ok`)),
			chromedp.WaitVisible(css(`%s[data-state=%q]`, row(id), state)),
		)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row(hostile))),
		clickNow(`%s td a`, row(hostile)),
		chromedp.WaitVisible(css(`#message-header`)),
	)
	if err != nil {
		t.Fatalf("queue page: %v", err)
	}
	// Each read is one evaluation: the page's refresh replaces the rows
	// and the panel, and a node found by one command may be gone by the next.
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ''`, row(hostile))))
	if err != nil {
		t.Fatal(err)
	}
	panel, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#message')?.textContent ?? ''`))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{sender, recipient} {
		if !strings.Contains(cells, text) || !strings.Contains(panel, text) {
			t.Errorf("%q is not shown as text; the row says %q, the panel %q", text, cells, panel)
		}
	}
	markup, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`))
	if err != nil {
		t.Fatal(err)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); markup != 0 || title != "relaykeeper" {
		t.Errorf("the hostile envelope became markup: %d img/script elements, title %q", markup, title)
	}

	err = chromedp.Do(ctx,
		act("hold", plain, "held"),
		act("release", plain, "ready"),
		act("retry", plain, "ready"),
		clickNow(`.act-delete[data-id=%q]`, hostile),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`%s`, row(hostile))),
	)
	if err != nil {
		t.Fatalf("queue actions: %v", err)
	}
	if errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#error').textContent`)); errText != "" {
		t.Errorf("the page shows an error after the actions: %q", errText)
	}
	if st := messageState(t, base, plain); st != "ready" {
		t.Errorf("message %s is %q after hold, release and retry; want ready", plain, st)
	}
	if got := scrape(t, base+"/api/queue"); strings.Contains(got, hostile) {
		t.Errorf("message %s is still queued after Delete in the browser:\n%s", hostile, got)
	}
	for _, tab := range []string{"bans", "actions", "rates", "activity", "alerts", "queue"} {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/#"+tab),
			chromedp.WaitVisible(css(`body[data-loaded=%q]`, tab)),
		); err != nil {
			t.Errorf("%s page: %v", tab, err)
		}
	}
	// Without an icon of its own, every page load asks for /favicon.ico,
	// a 404 on the console, sometimes after the checks above are done.
	icon, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('link[rel~="icon"]')?.href ?? ''`))
	if err != nil || icon == "" {
		t.Errorf("the page declares no icon (%v): the browser fetches /favicon.ico, a 404", err)
	} else if resp, err := http.Get(icon); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %v %v", icon, resp, err)
	} else {
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		t.Errorf("console: %s", m)
	}
}

// TestDashboardConfirmThenActAtOnce: an action confirmed and another
// asked for in the same turn of the page's event loop are both carried
// out. The page took the answer from the dialog's close event, which is
// queued: the second question reset the answer before it ran, and both
// actions were dropped as cancelled (a third of the clean-clone runs of
// the test above, whose next click came that soon).
func TestDashboardConfirmThenActAtOnce(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	held := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.com"}, message("to hold")).Final)
	gone := queuedID(t, mustSend(t, r.addr(), "bob@example.org", []string{"dave@example.com"}, message("to delete")).Final)
	row := func(id string) string { return fmt.Sprintf(`#queue-table tr[data-id=%q]`, id) }
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row(gone))),
		clickNow(`.act-hold[data-id=%q]`, held),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		// Confirm, and ask the next question before the page's next task.
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const d = document.querySelector(%q); if (!d) return false; document.getElementById('confirm-ok').click(); d.click(); return true })()`,
			fmt.Sprintf(`.act-delete[data-id=%q]`, gone))),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`%s`, row(gone))),
		chromedp.WaitVisible(css(`%s[data-state="held"]`, row(held))),
	)
	if err != nil {
		t.Errorf("hold, then delete at once: %v; the server says %s is %q", err, held, messageState(t, base, held))
	}
}

// TestAdminFlushThenListIsEmpty: E-MailRelay's flush answers only when
// forwarding is over, so that a script can flush and then check with list
// or failures; the messages delivered must be gone from list by the time
// flush says OK, not still "being forwarded" while their files wait for
// removal in the background.
func TestAdminFlushThenListIsEmpty(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	r, adminPort := adminRelay(t, sink.Addr(), "--no-bounces")
	for round := range 5 {
		for i := range 20 {
			mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("flush %d %d", round, i)))
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "flush\r\nlist\r\n")
		var replies []string
		for len(replies) < 2 {
			text, err := br.ReadString('>')
			if err != nil {
				t.Fatalf("admin: %v after %q", err, replies)
			}
			br.ReadByte() // the prompt's space
			replies = append(replies, strings.TrimSpace(strings.TrimSuffix(text, "E-MailRelay>")))
		}
		c.Close()
		if replies[0] != "OK" || replies[1] != "<none>" {
			t.Fatalf("round %d: flush, list = %q; want OK, <none>", round, replies)
		}
	}
}

// TestAdminFlushSaysWhy: a flush that cannot deliver says why, with the
// reply that kept the mail (E-MailRelay's flush answers "error: " and the
// reason), not only how many messages are left.
func TestAdminFlushSaysWhy(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: "451 4.3.2 try again after the tea break"}})
	r, adminPort := adminRelay(t, sink.Addr(), "--no-bounces")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("tea"))
	got := adminLine(t, adminPort, "flush")
	if want := "error: 1 of 1 message(s) not delivered; last reply: 451 4.3.2 try again after the tea break"; got != want {
		t.Errorf("admin flush = %q; want %q", got, want)
	}
}

// TestDashboardForwardAndRetryAllFailed: the queue page's Forward now and
// Retry all failed buttons do what the admin's forward and unfail-all do:
// a relay without --poll forwards its queue when told, the refused
// message fails, and Retry all failed makes it ready again.
func TestDashboardForwardAndRetryAllFailed(t *testing.T) {
	t.Parallel()
	ctx, up, r, base := refusingDashboard(t)
	good := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("good")).Final)
	bad := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"nobody@example.net"}, message("bad")).Final)

	row := func(id string) string { return fmt.Sprintf(`#queue-table tr[data-id=%q]`, id) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row(good))),
		chromedp.Click(css(`#forward-now`)),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`%s`, row(good))),
		chromedp.WaitVisible(css(`%s[data-state="failed"]`, row(bad))),
		chromedp.Click(css(`#unfail-all`)),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitVisible(css(`%s[data-state="ready"]`, row(bad))),
	)
	if err != nil {
		t.Fatalf("queue buttons: %v\n%s", err, scrape(t, base+"/api/queue"))
	}
	up.WaitTransactions(t, 1, 5*time.Second)
}
