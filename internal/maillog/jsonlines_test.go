package maillog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestJSONLines: every mail-log line becomes one JSON object holding the
// line unchanged, hostile values included.
func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 5, 2, 40, 0, 0, time.UTC)
	l := NewWithClock(JSONLines(&buf), func() time.Time { return now })
	l.event("accept", "id", "X1", "from", "<\"a\\\"}\n\"@example.org>")
	l.event("disconnect", "client", "127.0.0.1:1")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSONLines wrote %d lines; want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"accept", "disconnect"} {
		var got jsonLine
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", i, lines[i], err)
		}
		if got.Time != "2026-12-05T02:40:00.000Z" || got.Msg != "mail log" || !strings.HasPrefix(got.Line, got.Time+" "+want+" ") {
			t.Errorf("line %d = %+v; want the %s line with its time", i, got, want)
		}
		e, err := Parse(got.Line)
		if err != nil || e.Event != want {
			t.Errorf("Parse(%q) = %v, %v; want a %s entry", got.Line, e, err, want)
		}
	}
}
