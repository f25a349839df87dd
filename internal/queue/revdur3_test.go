package queue

import (
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRevDur3SeveralEnvelopes: a message with two envelope files (made by
// hand or a script: relaykeeper never makes two) was listed twice, both
// times with the same one's sender, recipients and state, so that the
// other could not be seen, and nothing said it was damaged. It is listed
// once, as damaged, naming both files, as recovery will quarantine it.
func TestRevDur3SeveralEnvelopes(t *testing.T) {
	ts := newTestSpool(t)
	env, err := os.ReadFile(ts.s.EnvelopePath(ts.ready, spool.Ready))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts.s.EnvelopePath(ts.ready, spool.Failed), env, 0o640); err != nil {
		t.Fatal(err)
	}
	msgs, err := List(ts.s, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.ID != ts.ready {
			continue
		}
		n++
		if !strings.Contains(m.Error, "several envelope files") || !strings.Contains(m.Error, ts.ready+".envelope.bad") {
			t.Errorf("listed %+v; want it damaged, naming both envelopes", m)
		}
	}
	if n != 1 {
		t.Errorf("%s listed %d times; want once", ts.ready, n)
	}
}
