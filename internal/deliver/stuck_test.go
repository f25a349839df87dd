package deliver

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// removingFilter is a client filter that replaces the message's content
// with a link to itself, so that the scheduler cannot read the message
// after it. (A filter that removes the content has taken the message.)
type removingFilter struct{}

func (removingFilter) Run(_ context.Context, content, _ string) filter.Result {
	os.Remove(content)
	os.Symlink(filepath.Base(content), content)
	return filter.Result{Outcome: filter.OK}
}

func (removingFilter) String() string { return "removing" }

// TestRunOnceCountsStuck: a message an error left for the next run (here
// its content cannot be opened after the client filter) is counted untried, so a
// flush or --as-client does not report everything delivered.
func TestRunOnceCountsStuck(t *testing.T) {
	up := startUpstream(t)
	sp, s, _, id := setup(t, up.addr, "ok@example.net")
	s.opts.ClientFilter = removingFilter{}
	sum, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Untried != 1 || sum.Sent != 0 || sum.NotDelivered() != 1 {
		t.Errorf("RunOnce = %+v; want the message counted untried", sum)
	}
	if _, st, err := sp.Read(id); err != nil || st != spool.Ready {
		t.Errorf("after RunOnce: %v, %v; want it left ready", st, err)
	}
}
