package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview13StartedLineNamesDashboard: off a terminal (systemd, a
// container, a redirected first command) the banner is not printed, so the
// "relaykeeper started" log line must say where the dashboard is; a new
// user running the README's first command with its output in a file found
// the SMTP address and the spool there, but not the dashboard's URL.
func TestReview13StartedLineNamesDashboard(t *testing.T) {
	t.Parallel()
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-on-disconnect", "--admin-http", admin)
	harness.WaitPort(t, admin, 5*time.Second)
	want := "dashboard=http://" + admin + "/"
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the start-up log lacks %q:\n%s", want, r.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := scrape(t, "http://"+admin+"/metrics"); !strings.Contains(got, "relaykeeper_up 1") {
		t.Errorf("/metrics at the address the log names lacks relaykeeper_up 1:\n%.500s", got)
	}
}

// TestReview13StatusListenerRoles: GET /api/status (and the line
// protocol's status) names a submission listener as "submission=ADDR", as
// docs/admin.md shows and the start-up line does; it used to list bare
// addresses, so port 587 could not be told from port 25.
func TestReview13StatusListenerRoles(t *testing.T) {
	t.Parallel()
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	sub := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--interface", "submission="+sub,
		"--spool-dir", t.TempDir(), "--admin-http", admin)
	harness.WaitPort(t, admin, 5*time.Second)
	got := scrape(t, "http://"+admin+"/api/status")
	for _, want := range []string{`"` + r.addr() + `"`, `"submission=` + sub + `"`} {
		if !strings.Contains(got, want) {
			t.Errorf("/api/status lacks the listener %s:\n%s", want, got)
		}
	}
}
