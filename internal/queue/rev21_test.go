package queue

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRev21HoldStateHint: "queue hold --state failed" (or held) is refused,
// since hold never takes those; the refusal pointed to the command that
// sends them ("queue retry sends failed messages again", "queue release
// sends held messages"), the opposite of what an administrator asking to
// hold wants. A hold is told that those messages are not delivered
// anyway, and no sending command is offered.
func TestRev21HoldStateHint(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []spool.State{spool.Failed, spool.Held} {
		_, err := Select(s, Hold, Selector{States: []spool.State{st}})
		if err == nil {
			t.Fatalf("hold --state %s: selected; want it refused", st)
		}
		if msg := err.Error(); strings.Contains(msg, "queue retry") || strings.Contains(msg, "queue release") ||
			!strings.Contains(msg, "not delivered") {
			t.Errorf("hold --state %s: %q; want it to say they are not delivered, offering no command that sends them", st, msg)
		}
	}
}
