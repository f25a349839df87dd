package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// scrape fetches url and returns the body; it fails the test on anything
// but 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s; want 200\n%s", url, resp.Status, body)
	}
	return string(body)
}

// series returns the value of the series whose line starts with name
// (labels included, exactly as exposed), or -1.
func series(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestMetricsAfterLoad runs the relay from the command line as docs/admin.md
// shows (--admin-http), sends mail that is delivered, refused by the
// upstream, refused at intake and held, and checks the series at /metrics.
func TestMetricsAfterLoad(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"gone@example.net": {Reply: "550 5.1.1 The email account that you tried to reach does not exist."},
	}})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "1", "--size", "20000",
		"--interface", "127.0.0.1", "--admin-http", httpAddr, "--spool-dir", spool)
	harness.WaitPort(t, httpAddr, 5*time.Second)

	const good = 8
	for i := range good {
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("load %d", i)))
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"gone@example.net"}, message("to a gone account"))
	// Too big for --size: refused at DATA by the relay itself.
	if _, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("too big")+strings.Repeat("0123456789012345678901234567890123456789\n", 600)); err == nil {
		t.Errorf("a message over --size was accepted")
	}
	up.WaitTransactions(t, good+2, 30*time.Second)

	base := "http://" + httpAddr
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		body = scrape(t, base+"/metrics")
		if series(body, `relaykeeper_deliveries_total{destination="example.net",result="sent"}`) == good &&
			series(body, `relaykeeper_deliveries_total{destination="example.net",result="bounced"}`) == 1 &&
			series(body, `relaykeeper_deliveries_total{destination="example.org",result="sent"}`) == 1 { // the bounce notice
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not counted in time:\n%s", grepLines(body, "relaykeeper_deliveries"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := map[string]float64{
		"relaykeeper_up":                      1,
		"relaykeeper_messages_accepted_total": good + 1,
		`relaykeeper_smtp_refused_total{reason="5.3.4",stage="data"}`: 1,
		`relaykeeper_upstream_replies_total{class="2xx"}`:             good + 1, // and the bounce notice
		`relaykeeper_upstream_replies_total{class="5xx"}`:             1,
		`relaykeeper_delivery_delay_seconds_count{result="sent"}`:     good + 1,
		`relaykeeper_queue_messages{state="ready"}`:                   0,
		"relaykeeper_smtp_sessions_open":                              0,
	}
	for name, v := range want {
		if got := series(body, name); got != v {
			t.Errorf("%s = %v; want %v", name, got, v)
		}
	}
	if got := series(body, "relaykeeper_smtp_connections_total"); got < good+2 {
		t.Errorf("relaykeeper_smtp_connections_total = %v; want at least %d", got, good+2)
	}
	for _, name := range []string{`relaykeeper_spool_fsync_seconds_count{kind="file"}`,
		`relaykeeper_spool_fsync_seconds_count{kind="directory"}`, "go_goroutines", "process_resident_memory_bytes"} {
		if got := series(body, name); got <= 0 {
			t.Errorf("%s = %v; want a positive value", name, got)
		}
	}
	// Never a label per address or message.
	if m := regexp.MustCompile(`(?m)^relaykeeper_\w+\{[^}]*(@|[0-9A-F]{16})`).FindString(body); m != "" {
		t.Errorf("a series is labelled with an address or an id: %s", m)
	}
	// The status counters are the same numbers.
	st := scrape(t, base+"/api/status")
	for _, w := range []string{`"messages_accepted": 9`, fmt.Sprintf(`"messages_forwarded": %d`, good+1), `"messages_failed": 1`} {
		if !strings.Contains(st, w) {
			t.Errorf("/api/status lacks %s:\n%s", w, st)
		}
	}
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsPasswordFile: --admin-password-file from the command line
// guards /metrics and the dashboard; the first line of the file is the
// password, as a Bearer token for tools or a Basic password for browsers.
func TestMetricsPasswordFile(t *testing.T) {
	t.Parallel()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	pwFile := writeFile(t, t.TempDir(), "admin.password", "s3cret\nsecond line is not the password\n", 0o600)
	startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--admin-http", httpAddr, "--admin-password-file", pwFile)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	get := func(path string, set func(*http.Request)) int {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name string
		path string
		set  func(*http.Request)
		want int
	}{
		{"no password", "/metrics", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong token", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer second line is not the password") }, http.StatusUnauthorized},
		{"bearer", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, http.StatusOK},
		{"basic", "/", func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") }, http.StatusOK},
	}
	for _, tt := range tests {
		if got := get(tt.path, tt.set); got != tt.want {
			t.Errorf("%s: GET %s = %d; want %d", tt.name, tt.path, got, tt.want)
		}
	}
}

// TestPaceOnDashboardAndMetrics: after Gmail's 421 4.7.28 rate reply the
// destination's pace is on the dashboard's /api/paces, with the reply that
// set it, and in relaykeeper_paced_destinations; the reply counts as a 4xx
// with the verdict pace.
func TestPaceOnDashboardAndMetrics(t *testing.T) {
	t.Parallel()
	fake := rateOnce(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect", "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@gmail.test"}, message("paced"))
	r.waitEvent("pace", 10*time.Second, nil)
	base := "http://" + httpAddr
	paces := scrape(t, base+"/api/paces")
	for _, want := range []string{`"destination": "` + fake.Addr() + `"`, `"verdict": "pace"`, `"concurrency": 1`, "unusual rate of email"} {
		if !strings.Contains(paces, want) {
			t.Errorf("/api/paces lacks %s:\n%s", want, paces)
		}
	}
	want := map[string]float64{
		"relaykeeper_paced_destinations":                                  1,
		`relaykeeper_upstream_replies_total{class="4xx"}`:                 1,
		`relaykeeper_upstream_verdicts_total{class="4xx",verdict="pace"}`: 1,
	}
	// The 4xx is counted from the delivery line, which follows the pace
	// line: under load a scrape just after the pace line came too early.
	var body string
	waitFor(10*time.Second, func() bool {
		body = scrape(t, base+"/metrics")
		for name, v := range want {
			if series(body, name) != v {
				return false
			}
		}
		return true
	})
	for name, v := range want {
		if got := series(body, name); got != v {
			t.Errorf("%s = %v; want %v", name, got, v)
		}
	}
}
