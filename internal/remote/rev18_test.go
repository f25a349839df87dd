package remote_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestRev18PromptTimeoutHeedsCancel: with --prompt-timeout, a Dial whose
// context ended while it waited for the greeting (the relay stopping, the
// grace over) waited for the greeting once more, a whole prompt timeout:
// the read deadline its end had set was replaced. It now returns at once.
func TestRev18PromptTimeoutHeedsCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never greets
		}
	}()
	for _, early := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		if early {
			cancel() // ended before the wait began
		} else {
			time.AfterFunc(200*time.Millisecond, cancel)
		}
		start := time.Now()
		_, err := remote.Dial(ctx, ln.Addr().String(), remote.Options{ConnectTimeout: 10 * time.Second,
			GreetingTimeout: 3 * time.Second, ResponseTimeout: 10 * time.Second})
		cancel()
		if took := time.Since(start); err == nil || took > 1500*time.Millisecond {
			t.Errorf("cancelled early=%v: Dial returned %v after %v; want an error at once", early, err, took)
		}
	}
}
