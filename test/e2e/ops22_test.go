package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps22ProxyStatusCounts: the same traffic (smtp-source, 4 messages
// of 3 recipients each) gives the same admin status counters and traffic
// plot through a proxy as through a relay that stores and forwards. A
// proxy said "0 message(s) accepted, 4 recipient(s) delivered" on the
// dashboard's status line for 4 messages and 12 recipients relayed.
func TestOps22ProxyStatusCounts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"--as-proxy", "--as-server"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{})
			httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
			args := []string{mode, up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--admin-http", httpAddr}
			if mode == "--as-server" {
				args = []string{mode, "--forward-to", up.Addr(), "--forward-on-disconnect", "--interface", "127.0.0.1",
					"--spool-dir", t.TempDir(), "--admin-http", httpAddr}
			}
			r := startRelay(t, "127.0.0.1", args...)
			harness.WaitPort(t, httpAddr, 5*time.Second)
			if out, err := harness.Source(t, harness.SourceOptions{Addr: r.addr(), Messages: 4, Sessions: 1, Recipients: 3,
				Size: 300, From: "alice@example.org", To: "bob@example.net"}); err != nil {
				t.Fatalf("smtp-source: %v\n%s", err, out)
			}
			up.WaitTransactions(t, 4, 10*time.Second)
			var st struct {
				Accepted  int `json:"messages_accepted"`
				Forwarded int `json:"messages_forwarded"`
				Failed    int `json:"messages_failed"`
			}
			var plot struct {
				Minutes []struct{ Accepted, Delivered int } `json:"minutes"`
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if err := json.Unmarshal([]byte(scrape(t, "http://"+httpAddr+"/api/status")), &st); err != nil {
					t.Fatal(err)
				}
				if st.Forwarded >= 12 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if st.Accepted != 4 || st.Forwarded != 12 || st.Failed != 0 {
				t.Errorf("status after 4 messages of 3 recipients: %d accepted, %d forwarded, %d failed; want 4, 12, 0",
					st.Accepted, st.Forwarded, st.Failed)
			}
			if err := json.Unmarshal([]byte(scrape(t, "http://"+httpAddr+"/api/activity?minutes=5")), &plot); err != nil {
				t.Fatal(err)
			}
			var accepted, delivered int
			for _, m := range plot.Minutes {
				accepted += m.Accepted
				delivered += m.Delivered
			}
			if accepted != 4 || delivered != 12 {
				t.Errorf("traffic plot: %d accepted, %d delivered; want 4 and 12", accepted, delivered)
			}
			// The rejection rates' replies: one per recipient in both modes.
			if got := series(scrape(t, "http://"+httpAddr+"/metrics"), `relaykeeper_upstream_replies_total{class="2xx"}`); got != 12 {
				t.Errorf(`relaykeeper_upstream_replies_total{class="2xx"} = %v; want 12`, got)
			}
		})
	}
}

// TestOps22MailLoginsDoNotLockOutAdmin: failed SMTP logins from an address
// do not lock that address out of the admin HTTP listener, nor does the
// right admin password clear them. The two shared one count: a local mail
// client with a stale password (5 failures in 10 minutes) had every scrape
// of /metrics by a Prometheus on the same host answered 429 for the rest
// of the window, so that RelaykeeperDown fired and the dashboard refused
// its administrator; and each successful scrape, or the dashboard's
// refresh every 5 seconds, cleared the SMTP failures of its address.
func TestOps22MailLoginsDoNotLockOutAdmin(t *testing.T) {
	t.Parallel()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	pw := writeFile(t, t.TempDir(), "admin.password", "s3cret\n", 0o600)
	r := startAuthRelay(t, plainSecrets, "", "--admin-http", httpAddr, "--admin-password-file", pw)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	metrics := func() int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 4 {
		loginTLS(t, r.addr(), "127.0.0.1", "alice", "stale", authFailed)
	}
	if code := metrics(); code != http.StatusOK {
		t.Fatalf("GET /metrics with the right password = %d; want 200", code)
	}
	loginTLS(t, r.addr(), "127.0.0.1", "alice", "stale", authFailed)
	if code := metrics(); code != http.StatusOK {
		t.Errorf("GET /metrics with the right password after 5 failed SMTP logins from its address = %d; want 200", code)
	}
	// The scrapes' right admin password is no mail login: the 5 failures
	// stand, and the right mail password is refused for now too.
	loginTLS(t, r.addr(), "127.0.0.1", "alice", "alice pw", "454 4.7.0 Too many authentication failures; try again later")
}
