package postfixlog

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDocs26FollowDirectory: "relaykeeper postfix-enforcer --once --log
// DIR" (a directory given for the mail log) waited forever without a
// word, since reading a directory fails and the follower took that for
// the end of the file. Opening one is now an error naming it.
func TestDocs26FollowDirectory(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := &Follower{Path: dir, Once: true, Poll: 10 * time.Millisecond}
	err := f.Run(ctx, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), dir+" is a directory, not a mail log") {
		t.Errorf("Run(a directory) = %v; want %q", err, dir+" is a directory, not a mail log")
	}
}
