package remote_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestSendAhead354ToMailOrRcpt: a server that answers MAIL or RCPT with
// 354 may be reading what follows as message text, so the replies to the
// rest of the group never come. Store-and-forward waited for them the
// whole response timeout (5 minutes by default) before it deferred the
// message; the proxy's path already ended the session at once (71f1ec1).
func TestSendAhead354ToMailOrRcpt(t *testing.T) {
	for _, stage := range []string{"mail", "rcpt"} {
		t.Run(stage, func(t *testing.T) {
			addr := newScript(t, func(s *scriptConn) {
				s.send("220 script.test ESMTP")
				s.expect("EHLO [127.0.0.1]")
				s.send("250-script.test", "250 PIPELINING")
				s.read(3)
				if stage == "mail" {
					s.send("354 go ahead")
				} else {
					s.send("250 ok", "354 go ahead")
				}
				// Reading text now: nothing more is answered.
				b := make([]byte, 4096)
				for {
					if _, err := s.nc.Read(b); err != nil {
						return
					}
				}
			})
			c := dial(t, addr, remote.Options{ResponseTimeout: 8 * time.Second})
			start := time.Now()
			_, err := c.SendAhead(context.Background(), message("a@example.net"), nil)
			var re *remote.Error
			if !errors.As(err, &re) || re.Stage != stage || !re.Temporary() {
				t.Errorf("SendAhead = %v; want a temporary remote.Error at %s", err, stage)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("SendAhead took %v: it waited for replies a server reading text never sends", d.Round(time.Second))
			}
			if !c.Broken() {
				t.Error("Broken() = false; want the session ended")
			}
		})
	}
}
