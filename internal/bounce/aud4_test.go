package bounce

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestAud4DelayRetryUntilAfterRequeue: a failed message sent again with
// "queue retry" gets a fresh queue lifetime, counted from the retry
// (docs/queue.md); its delay notice still promised retries only until
// arrival plus the lifetime: a Will-Retry-Until in the past, and "retried
// until it is 5 day(s) old" for a message already older.
func TestAud4DelayRetryUntilAfterRequeue(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	content := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(content, []byte("Subject: x\r\n\r\nbody\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	env.Requeued = arrival.Add(6 * 24 * time.Hour)
	at := env.Requeued.Add(2 * time.Hour)
	n := &Notifier{Spool: sp, ReportingMTA: "relay.test", MaxQueueLifetime: 5 * 24 * time.Hour,
		Now: func() time.Time { return at }}
	if err := n.Notify(Delay, env, func() (string, error) { return content, nil }, env.Recipients[3:]); err != nil {
		t.Fatal(err)
	}
	ents, err := sp.List()
	if err != nil || len(ents) != 1 {
		t.Fatalf("spool after the notice: %v, %v; want one notice", ents, err)
	}
	rc, err := sp.OpenContent(ents[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	want := "Will-Retry-Until: " + env.Requeued.Add(5*24*time.Hour).In(at.Location()).Format(time.RFC1123Z)
	if !strings.Contains(string(b), want) {
		t.Errorf("delay notice after a queue retry lacks %q:\n%s", want, b)
	}
}
