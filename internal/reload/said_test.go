package reload

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSaidOncePerVersion: a complaint the previous pass made too is
// dropped, unless the pass reads everything; one that stopped and came
// back is said again; information is never dropped.
func TestSaidOncePerVersion(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	var s Said
	pass := func(all bool, msgs ...string) {
		log, end := s.Pass(base, all)
		for _, m := range msgs {
			if m == "info" {
				log.Info("table reloaded")
				continue
			}
			log.With("role", "x").Error("table not reloaded", "err", m)
		}
		end()
	}
	pass(false, "a:1", "info")
	pass(false, "a:1", "info") // dropped, info kept
	pass(false, "a:1", "b:2")  // b new
	pass(true, "a:1", "b:2")   // SIGHUP: both
	pass(false)                // mended
	pass(false, "a:1")         // broken again
	pass(false, "a:1")         // dropped
	got := buf.String()
	if n := strings.Count(got, "err=a:1"); n != 3 {
		t.Errorf("a:1 said %d times; want 3 (first, SIGHUP, broken again):\n%s", n, got)
	}
	if n := strings.Count(got, "err=b:2"); n != 2 {
		t.Errorf("b:2 said %d times; want 2:\n%s", n, got)
	}
	if n := strings.Count(got, "table reloaded"); n != 2 {
		t.Errorf("information said %d times; want 2", n)
	}
}
