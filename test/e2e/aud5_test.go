package e2e

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestAud5BansReloadReportsBadLine: a line typed by hand into the ban file
// of a running relay that does not parse is reported in the relay's log as
// FILE:LINE, as it is at start. Before the fix the running relay skipped it
// in silence: the operator's ban was not in force and nothing said so.
func TestAud5BansReloadReportsBadLine(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{})
	file := enforceFile(r, "bans")
	if err := os.WriteFile(file, []byte("127.0.0.9 until=2099-01-01T00:00:00Z\n127.0.1.0/33 until=2099-01-01T00:00:00Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := file + ":2: not an IP address"
	if !waitFor(15*time.Second, func() bool { return strings.Contains(r.stderr(), want) }) {
		t.Errorf("relay's log after a hand-edited ban file with a bad line 2 does not say %q:\n%s", want, r.stderr())
	}
	// The good line is in force.
	if _, greet, err := dialFrom(r.addr(), "127.0.0.9"); err == nil && greet.code() != 554 {
		t.Errorf("127.0.0.9, banned by hand, greeted %q; want 554", greet)
	}
}
