package remote_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestSendAheadClosingReply: a server that answers the next message's
// MAIL, sent behind the final dot, with 421 and closes (Gmail's "421-4.7.28
// ... unusual rate of email originating from your IP address") gave that
// reply to the next message: the Send of that message returns it, as a
// Send of its own would have, instead of losing it with the session. Any
// other message is refused unsent, for another session.
func TestSendAheadClosingReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		to       string
		wantCode int
	}{{"same message", "b@example.net", 421}, {"other message", "c@example.net", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := newScript(t, func(s *scriptConn) {
				aheadOpening(s)
				s.send("250 2.0.0 queued", "421 4.7.28 unusual rate of email originating from your IP address, closing connection")
			})
			c := dial(t, addr, remote.Options{})
			ctx := context.Background()
			res, err := c.SendAhead(ctx, message("a@example.net"), message("b@example.net"))
			if err != nil || !res.Accepted(0) {
				t.Fatalf("SendAhead = %+v, %v; want accepted", res, err)
			}
			if !c.Broken() || !c.Answered() {
				t.Errorf("Broken(), Answered() = %v, %v; want true, true", c.Broken(), c.Answered())
			}
			res, err = c.Send(ctx, message(tc.to))
			if err == nil || res.RcptReply(0).Code != tc.wantCode {
				t.Errorf("next Send = %+v, %v; want an error and reply code %d", res, err, tc.wantCode)
			}
			if c.Answered() {
				t.Errorf("Answered() after the next Send")
			}
		})
	}
}

// TestSendAheadSlowReplies: when the server answers the next message's
// MAIL and then nothing in time, the session is broken and nothing is
// kept: the next message goes on another session, not deferred for it.
func TestSendAheadSlowReplies(t *testing.T) {
	done := make(chan struct{})
	addr := newScript(t, func(s *scriptConn) {
		aheadOpening(s)
		s.send("250 2.0.0 queued", "250 2.1.0 ok")
		<-done
	})
	defer close(done)
	c := dial(t, addr, remote.Options{ResponseTimeout: 200 * time.Millisecond})
	res, err := c.SendAhead(context.Background(), message("a@example.net"), message("b@example.net"))
	if err != nil || !res.Accepted(0) {
		t.Fatalf("SendAhead = %+v, %v; want accepted", res, err)
	}
	if !c.Broken() || c.Answered() || c.Waiting() {
		t.Errorf("Broken(), Answered(), Waiting() = %v, %v, %v; want true, false, false", c.Broken(), c.Answered(), c.Waiting())
	}
}
