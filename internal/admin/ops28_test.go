package admin

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOps28QuarantineShown: the dashboard's status line (GET /api/status),
// its read-only view and the text protocol's status say how many messages
// recovery set aside. Before, none did: the queue's table lists only the
// spool, so a dashboard over a spool whose acknowledged mail had been
// quarantined at the start looked like a spool with nothing wrong.
func TestOps28QuarantineShown(t *testing.T) {
	f := newFixture(t, Options{})
	q := f.spool.QuarantinePath()
	for _, name := range []string{"6B17287AA30C2DAD.envelope", "6B17287AA9285EA4.content", "6B17287AF82E87E4.content", "6B17287AF82E87E4.envelope.new"} {
		if err := os.WriteFile(filepath.Join(q, name), []byte("x\r\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	a := f.api(t)
	var st statusReport
	if code, body := a.do("GET", "/api/status", nil, &st); code != http.StatusOK {
		t.Fatalf("GET /api/status = %d %s", code, body)
	}
	if st.Quarantined != 3 {
		t.Errorf("GET /api/status: quarantined %d; want 3", st.Quarantined)
	}
	if _, body := a.do("GET", "/", nil, nil); !strings.Contains(body, "<b>3 quarantined</b>") {
		t.Errorf("GET /: the read-only view does not say \"3 quarantined\"")
	}
	f.serveText(t, nil)
	want := "quarantine: 3 set aside by recovery (relaykeeper queue quarantine)"
	if got := f.dial(t).cmd("status"); !slices.Contains(got, want) {
		t.Errorf("status = %q; want a line %q", got, want)
	}
}
