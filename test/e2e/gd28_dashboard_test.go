package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGd28DashboardWelcomelistedBan: a ban of a welcomelisted address is
// ignored while the address is listed. bans list said so ("[not applied:
// welcomelisted]"); the dashboard showed the ban as any other, in the
// page, in /api/bans and on the page without JavaScript.
func TestGd28DashboardWelcomelistedBan(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	httpAddr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	startEnforcer(t, up.Addr(), enforceOpts{welcome: "192.0.2.7\n", extra: []string{"--admin-http", httpAddr}})
	harness.WaitPort(t, httpAddr, 5*time.Second)
	base := "http://" + httpAddr
	for _, ip := range []string{"192.0.2.7", "192.0.2.8"} {
		resp, err := http.Post(base+"/api/bans", "application/json", strings.NewReader(`{"ip":"`+ip+`","reason":"test ban"}`))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/bans %s: %v %v", ip, resp, err)
		}
		resp.Body.Close()
	}
	if got := scrape(t, base+"/api/bans"); strings.Count(got, `"not_applied": "welcomelisted"`) != 1 {
		t.Errorf("/api/bans = %s; want the ban of 192.0.2.7 alone marked not_applied", got)
	}
	if got := scrape(t, base+"/"); !strings.Contains(got, "[not applied: welcomelisted] test ban") {
		t.Errorf("the page without JavaScript does not mark the welcomelisted ban:\n%s", got)
	}

	_, shot := screenshots(t)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#bans"),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="192.0.2.7"]`)),
		chromedp.WaitVisible(css(`#bans-table tr[data-ip="192.0.2.8"]`)),
		shot("gd28-bans-welcomelisted"),
	)
	if err != nil {
		t.Fatalf("bans page: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`['192.0.2.7', '192.0.2.8'].map(ip => document.querySelector('#bans-table tr[data-ip="' + ip + '"]')?.textContent ?? '')`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rows[0], "[not applied: welcomelisted]") || strings.Contains(rows[1], "not applied") {
		t.Errorf("the bans' rows read %q; want 192.0.2.7's alone marked [not applied: welcomelisted]", rows)
	}
}
