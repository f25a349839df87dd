package e2e

import (
	"fmt"
	"io"
	"net/http"
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
	_, _, pem := certFiles(t, t.TempDir()) // submission requires STARTTLS
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--interface", "submission="+sub,
		"--server-tls-certificate", pem, "--spool-dir", t.TempDir(), "--admin-http", admin)
	harness.WaitPort(t, admin, 5*time.Second)
	got := scrape(t, "http://"+admin+"/api/status")
	for _, want := range []string{`"` + r.addr() + `"`, `"submission=` + sub + `"`} {
		if !strings.Contains(got, want) {
			t.Errorf("/api/status lacks the listener %s:\n%s", want, got)
		}
	}
}

// TestReview13ForwardWithoutSmarthost: POST /api/forward on the README's
// first command (--forward-on-disconnect, no smarthost: delivery by MX) is
// accepted, and on a store-only relay it is refused with a hint that no
// longer demands --forward-to, which the MX delivery made optional.
func TestReview13ForwardWithoutSmarthost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"by MX", []string{"--forward-on-disconnect"}, http.StatusAccepted},
		{"store only", nil, http.StatusConflict},
	} {
		admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		args := append([]string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--admin-http", admin}, tc.args...)
		startRelay(t, "127.0.0.1", args...)
		harness.WaitPort(t, admin, 5*time.Second)
		resp, err := http.Post("http://"+admin+"/api/forward", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: POST /api/forward = %d %s; want %d", tc.name, resp.StatusCode, body, tc.code)
		}
		if tc.code == http.StatusConflict && (!strings.Contains(string(body), "--forward-on-disconnect") || strings.Contains(string(body), "use --forward-to")) {
			t.Errorf("%s: the refusal reads %s; want the forwarding switches, without demanding --forward-to", tc.name, body)
		}
	}
}
