package queue

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestContentMissing: an envelope whose content file is gone (torn) is
// listed as damaged, "queue show" says which file is missing, and "queue
// delete" removes it. Before, the listing showed a ready message of size
// 0 and nothing else, while show and delete answered "no such message", so
// only a restart's quarantine or rm could remove it.
func TestContentMissing(t *testing.T) {
	ts := newTestSpool(t)
	for _, id := range []string{ts.due, ts.failed, ts.held} {
		if err := os.Remove(ts.s.ContentPath(id)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := List(ts.s, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string]bool{}
	for _, m := range msgs {
		if strings.Contains(m.Error, ".content is missing") {
			damaged[m.ID] = true
		}
	}
	for _, id := range []string{ts.due, ts.failed, ts.held} {
		if !damaged[id] {
			t.Errorf("List: %s, whose content is missing, not listed as damaged (%v)", id, damaged)
		}
	}
	if damaged[ts.ready] || len(damaged) != 3 {
		t.Errorf("List: damaged %v; want only the three without content", damaged)
	}
	var b bytes.Buffer
	NewListing(ts.s.Dir(), msgs, nil).WriteText(&b, t0, false)
	if want := "    damaged: content file " + ts.due + ".content is missing"; !strings.Contains(b.String(), want) {
		t.Errorf("listing lacks %q:\n%s", want, b.String())
	}
	if _, err := Show(ts.s, ts.due, false); err == nil || !strings.Contains(err.Error(), ts.due+".content is missing") {
		t.Errorf("Show(content missing) = %v; want an error naming %s.content", err, ts.due)
	}
	for _, id := range []string{ts.due, ts.failed, ts.held} {
		r := Apply(ts.s, Delete, []string{id})
		if r[0].Outcome != Done {
			t.Errorf("Delete(%s, content missing) = %+v; want done", id, r[0])
		}
	}
	for _, st := range []spool.State{spool.Ready, spool.Failed, spool.Held} {
		for _, id := range []string{ts.due, ts.failed, ts.held} {
			if _, err := os.Stat(ts.s.EnvelopePath(id, st)); err == nil {
				t.Errorf("%s's envelope (%s) is still there after Delete", id, st)
			}
		}
	}
	if r := Apply(ts.s, Delete, []string{ts.due}); r[0].Outcome != NotFound {
		t.Errorf("Delete(%s) again = %+v; want not found", ts.due, r[0])
	}
	// A whole message is untouched.
	if m, err := Get(ts.s, ts.ready); err != nil || m.Error != "" {
		t.Errorf("Get(whole message) = %+v, %v", m, err)
	}
}
