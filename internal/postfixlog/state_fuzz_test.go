package postfixlog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTrackerState: a tracker restored from any saved state (a state file
// that was truncated, hand-edited or written by another version) takes the
// log lines that follow without panicking, and saves a state that restores
// to itself.
func FuzzTrackerState(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "hostile", "amavis-guess.log"))
	if err != nil {
		f.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var events []Event
	for _, l := range lines {
		if e, ok := ParseLine(l); ok {
			events = append(events, e)
		}
	}
	// Seeds: the states of a tracker part way through the log.
	tr := &Tracker{}
	for _, e := range events {
		tr.Add(e)
		s, _ := json.Marshal(tr)
		f.Add(s)
	}
	for _, s := range []string{`{}`, `{"queue":null}`, `{"queue":{"4C2B7985118":null}}`, `{"queue":{"4C2B7985118":{"origin":{}}}}`,
		`{"held":[null,{}]}`, `{"pickups":[{},{},{}]}`, `{"queue":{"x":{}}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, state []byte) {
		tr := &Tracker{}
		if err := json.Unmarshal(state, tr); err != nil {
			return
		}
		for _, e := range events {
			tr.Add(e)
		}
		tr.Release(0)
		saved, err := json.Marshal(tr)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again := &Tracker{}
		if err := json.Unmarshal(saved, again); err != nil {
			t.Fatalf("state %s does not restore: %v", saved, err)
		}
		if resaved, _ := json.Marshal(again); string(resaved) != string(saved) {
			t.Fatalf("state %s restores as %s", saved, resaved)
		}
	})
}
