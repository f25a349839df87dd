package queue

import (
	"strings"
	"testing"
)

// TestQ20PostsuperALL: a Postfix administrator types "relaykeeper queue
// delete ALL" (or "hold ALL deferred") as with postsuper. The result said
// only "not found: no such message", as for a mistyped id, which reads as
// if the queue were empty; it now points at --all and --state.
func TestQ20PostsuperALL(t *testing.T) {
	ts := newTestSpool(t)
	for _, act := range []Action{Delete, Hold, Release} {
		r := Apply(ts.s, act, []string{"ALL"})
		if r[0].Outcome != NotFound || !strings.Contains(r[0].Detail, "--all") || !strings.Contains(r[0].Detail, "--state") {
			t.Errorf("%v ALL: %v %q; want not found, naming --all and --state", act, r[0].Outcome, r[0].Detail)
		}
	}
	if r := Apply(ts.s, Delete, []string{"0000000000000000"}); r[0].Detail != "no such message" {
		t.Errorf("an unknown id: %q; want no such message", r[0].Detail)
	}
}
