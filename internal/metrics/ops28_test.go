package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestOps28QuarantinedGauge: the messages recovery set aside are a gauge,
// so that an alert can say so. Before, the quarantine was seen only in the
// log at the start and with "relaykeeper queue quarantine": the metrics
// (and the shipped alert rules) showed a spool with nothing wrong while
// messages the relay had acknowledged waited there for an administrator.
func TestOps28QuarantinedGauge(t *testing.T) {
	dir := t.TempDir()
	// Two torn messages, an envelope without content and a content without
	// envelope, and one whole message: recovery sets the first two aside.
	env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\nX-MailRelay-From: a@example.org\r\n" +
		"X-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: b@example.net\r\nX-MailRelay-End: 1\r\n"
	files := map[string]string{
		"6B17287AA30C2DAD.envelope": env,
		"6B17287AA9285EA4.content":  "Subject: x\r\n\r\nx\r\n",
		"6B17287AF82E87E4.envelope": env,
		"6B17287AF82E87E4.content":  "Subject: y\r\n\r\ny\r\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	sp, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Queue: sp})
	want := func(n int) {
		t.Helper()
		text := "# HELP relaykeeper_queue_quarantined_messages Messages recovery set aside in the spool's quarantine (relaykeeper queue quarantine).\n" +
			"# TYPE relaykeeper_queue_quarantined_messages gauge\n" +
			"relaykeeper_queue_quarantined_messages " + string(rune('0'+n)) + "\n"
		if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(text), "relaykeeper_queue_quarantined_messages"); err != nil {
			t.Error(err)
		}
	}
	want(0)
	rep, err := sp.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined) != 2 {
		t.Fatalf("recovery quarantined %v; want the two torn messages", rep.Quarantined)
	}
	want(2)
}
