package queue

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestOps20DamagedMessageNamed: "queue list" shows a message whose content
// file is missing, or whose envelope cannot be read, as damaged, naming
// the file; hold, release, retry and flush of it answered "not found: no
// such message", and with --all "unchanged, gone since it was selected
// (delivered or removed)", sending the administrator after a message that
// was still in the spool. They now say what is wrong with it, as "queue
// show" does.
func TestOps20DamagedMessageNamed(t *testing.T) {
	ts := newTestSpool(t)
	for _, id := range []string{ts.due, ts.held, ts.failed} {
		if err := os.Remove(ts.s.ContentPath(id)); err != nil {
			t.Fatal(err)
		}
	}
	// An envelope emptied by a full disk or a hand edit.
	if err := os.WriteFile(ts.s.EnvelopePath(ts.ready, spool.Ready), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		act  Action
		id   string
		want string
	}{
		{Hold, ts.due, ts.due + ".content is missing"},
		{Retry, ts.due, ts.due + ".content is missing"},
		{Flush, ts.due, ts.due + ".content is missing"},
		{Release, ts.held, ts.held + ".content is missing"},
		{Retry, ts.failed, ts.failed + ".content is missing"},
		{Hold, ts.ready, ts.ready + ".envelope"},
		{Retry, ts.ready, ts.ready + ".envelope"},
	} {
		for _, scope := range []Scope{Named, Selected} {
			rep := Change(ts.s, c.act, []string{c.id}, scope)
			r := rep.Results[0]
			if r.Outcome != Failed || !strings.Contains(r.Detail, c.want) || rep.Failed != 1 {
				t.Errorf("%s %s (scope %v) = %+v (failed %d); want an error naming %q", c.act, c.id, scope, r, rep.Failed, c.want)
			}
		}
	}
}

// TestOps20FIFOContentListed: a message whose content file is a named pipe
// was listed as a whole message of 0 bytes, and "queue show" waited for a
// writer for good. The listing now says what is wrong, and show returns.
func TestOps20FIFOContentListed(t *testing.T) {
	ts := newTestSpool(t)
	if err := os.Remove(ts.s.ContentPath(ts.due)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(ts.s.ContentPath(ts.due), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs, err := List(ts.s, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.ID == ts.due && !strings.Contains(m.Error, ts.due+".content is not a regular file") {
			t.Errorf("List: the message whose content is a named pipe = %+v; want it listed as damaged", m)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := Show(ts.s, ts.due, true)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Show(content a named pipe) = %v; want an error saying so", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Show(content a named pipe) still waiting after 5 s")
	}
}
