package queue

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestSelectStateTheActionNeverTakes: "queue retry --state held" said
// "retry: 0 done." with held messages in the queue, since retry never
// takes a held message; the administrator was left to guess that release
// is the command. A --state naming only states the action never changes
// is refused, saying which it takes and, for held and failed messages,
// which command does what was meant. A list that names one state it
// takes selects as before.
func TestSelectStateTheActionNeverTakes(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		act    Action
		states []spool.State
		want   string
	}{
		{Retry, []spool.State{spool.Held}, "queue retry takes ready, claimed, failed messages, not held; queue release sends held messages"},
		{Release, []spool.State{spool.Failed}, "queue release takes held messages, not failed; queue retry sends failed messages again"},
		{Flush, []spool.State{spool.New}, "queue flush takes ready, claimed messages, not new"},
		{Retry, []spool.State{spool.Held, spool.Ready}, ""},
		{Retry, []spool.State{journalPseudo}, ""}, // spool21: a dead relay's journal, any state
		{Delete, nil, ""},
	} {
		_, err := Select(s, tc.act, Selector{States: tc.states, All: tc.states == nil})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s --state %v: %v; want it selected", tc.act, tc.states, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s --state %v: %v; want %q", tc.act, tc.states, err, tc.want)
		}
	}
}
