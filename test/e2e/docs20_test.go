package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// metricsTranscript returns the series docs/metrics.md's "After a test
// load" shows for "curl -s $A/metrics | grep '^relaykeeper_' | grep -v
// _bucket", names with their labels, in the page's order.
func metricsTranscript(t *testing.T) []string {
	t.Helper()
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(page), "| grep '^relaykeeper_' | grep -v _bucket\n")
	if !ok {
		t.Fatal("docs/metrics.md has no curl | grep '^relaykeeper_' transcript")
	}
	var shown []string
	for _, line := range strings.Split(rest, "\n") {
		if line == "..." {
			continue
		}
		name, _, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "relaykeeper_") {
			break
		}
		shown = append(shown, name)
	}
	return shown
}

// leftOut is what the page says its transcript leaves out: the
// queue-age series, the states new and claimed, and the verdict series
// between its first and last (the "..." line).
var leftOut = regexp.MustCompile(`^relaykeeper_queue_messages_by_age|state="(new|claimed)"|^relaykeeper_upstream_verdicts_total`)

// TestDocs20MetricsTranscript runs docs/metrics.md's test load (Postfix's
// smtp-sink as the smarthost, mail to example.net and gmail.com, one
// message over --size) and compares the series the relay serves with the
// page's transcript: each series shown is served, and each one served is
// shown or among those the page says it leaves out. The transcript lacked
// the three relaykeeper_alerts_total series, which the same page says are
// there at 0 from the start.
func TestDocs20MetricsTranscript(t *testing.T) {
	t.Parallel()
	shown := metricsTranscript(t)
	sink := harness.StartSink(t, harness.SinkOptions{})
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", sink.Addr(), "--poll", "1", "--size", "100000", "--admin-http", httpAddr)
	harness.WaitPort(t, httpAddr, 5*time.Second)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("load 1"))
	mustSend(t, r.addr(), "carol@example.org", []string{"dave@gmail.com"}, message("load 2"))
	if _, err := sendMail(r.addr(), "a@example.org", []string{"b@example.net"}, message("big")+strings.Repeat("0123456789012345678901234567890123456789\n", 3000)); err == nil {
		t.Errorf("a message over --size was accepted")
	}
	sink.WaitCount(t, 2, 30*time.Second)

	var served []string
	waitFor(20*time.Second, func() bool {
		served = served[:0]
		body := scrape(t, "http://"+httpAddr+"/metrics")
		for _, line := range strings.Split(body, "\n") {
			name, _, _ := strings.Cut(line, " ")
			if strings.HasPrefix(name, "relaykeeper_") && !strings.Contains(name, "_bucket") {
				served = append(served, name)
			}
		}
		return slices.Contains(served, `relaykeeper_deliveries_total{destination="gmail.com",result="sent"}`) &&
			slices.Contains(served, `relaykeeper_deliveries_total{destination="example.net",result="sent"}`)
	})
	for _, name := range shown {
		if !slices.Contains(served, name) {
			t.Errorf("docs/metrics.md shows %s; the relay serves no such series", name)
		}
	}
	for _, name := range served {
		if !slices.Contains(shown, name) && !leftOut.MatchString(name) {
			t.Errorf("the relay serves %s; docs/metrics.md's transcript neither shows it nor says it is left out", name)
		}
	}
}
