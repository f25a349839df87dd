package reload

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
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

// TestRev24SaidNewBadVersion: a loader returns the error value it kept for
// a refused version at every look, and a new value for a new version. A
// new version with the same bad line (another line added, this one left
// in) reads the same; it was dropped, and the administrator, told nothing
// after the edit, took the new entry for one in force. An error that is a
// new value at every look (a missing file) is still said once.
func TestRev24SaidNewBadVersion(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	var s Said
	pass := func(err error) {
		log, end := s.Pass(base, false)
		log.Error("table not reloaded; the old one stays in force", "err", err)
		end()
	}
	v1 := errors.New("/etc/x:3: bad action")
	pass(v1)
	pass(v1)
	pass(v1)
	v2 := errors.New("/etc/x:3: bad action") // the edited file, line 3 still bad
	pass(v2)
	pass(v2)
	if n := strings.Count(buf.String(), "bad action"); n != 2 {
		t.Errorf("said %d times; want 2 (each version once):\n%s", n, buf.String())
	}
	buf.Reset()
	for range 4 {
		pass(fmt.Errorf("table: %w", os.ErrNotExist)) // a new value each look
	}
	if n := strings.Count(buf.String(), "not exist"); n != 1 {
		t.Errorf("missing file said %d times; want once:\n%s", n, buf.String())
	}
}
