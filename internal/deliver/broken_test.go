package deliver

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestBrokenEnvelopeReported: a ready message whose envelope cannot be
// read is never claimed, so nothing else would tell of it until a restart
// quarantines it; the scan says so once, with what to do, and not again
// at every poll.
func TestBrokenEnvelopeReported(t *testing.T) {
	sp, s, _, id := setup(t, "127.0.0.1:9", "a@example.net")
	if err := os.WriteFile(sp.EnvelopePath(id, spool.Ready), []byte("garbage\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		if _, err := s.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "id="+id); n != 1 || !strings.Contains(logs.String(), "envelope unreadable") {
		t.Errorf("log after two scans of a broken envelope (%d lines name it; want 1 saying it is unreadable):\n%s", n, logs.String())
	}
}
