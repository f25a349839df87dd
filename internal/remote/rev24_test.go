package remote_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestRev24CancelBeforeTheTextHolds: a context that ends while the
// client is between two reads and writes (here: just after the 354) cuts
// the delivery. The end set a deadline in the past, which the deadline of
// the text's first write and of the wait for the reply to the final dot
// replaced: the delivery waited out the DataTimeout (10 minutes in use)
// for an upstream that holds the reply, and deliver's Hurry, the
// operator's "stop now", was lost (TestHurryBeforeRunHolds failed about
// one run in three).
func TestRev24CancelBeforeTheTextHolds(t *testing.T) {
	release := make(chan struct{})
	addr := newScript(t, func(s *scriptConn) {
		upToTheText(s)
		// Takes the text, if it comes, and holds the reply to the dot.
		go func() {
			b := make([]byte, 4096)
			for {
				if _, err := s.nc.Read(b); err != nil {
					return
				}
			}
		}()
		<-release
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := dial(t, addr, remote.Options{DataTimeout: 8 * time.Second, Trace: func(dir, line string) {
		if dir == "<" && line == "354 go ahead" {
			cancel()
			time.Sleep(100 * time.Millisecond) // the end's AfterFunc has run
		}
	}})
	start := time.Now()
	_, err := c.Send(ctx, message("a@example.net"))
	if err == nil {
		t.Fatal("Send after its context ended = nil error; want one")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Send took %v after its context ended at the 354; want it cut short (not the 8s DataTimeout)", d)
	}
}
