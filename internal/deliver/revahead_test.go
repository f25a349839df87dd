package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestAheadMailRefusedClosing: the upstream answers the MAIL of a batch's
// next message, sent behind the previous message's final dot, with Gmail's
// 421 4.7.28 rate reply. That reply is the next message's outcome: it is
// deferred with it, the destination is paced, and nothing more goes on a
// new session (before, the reply was lost with the session and the message
// went at once on a new one).
func TestAheadMailRefusedClosing(t *testing.T) {
	up := startUpstream(t)
	up.mailErr = map[int]*smtp.SMTPError{2: {Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 28},
		Message: "Gmail has detected an unusual rate of email originating from your IP address"}}
	sp, s, _, _ := setup(t, up.addr, "m0@example.net")
	queueMore(t, sp, "m1@example.net")
	queueMore(t, sp, "m2@example.net")
	s.opts.Connections = 1
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := up.got(); len(got) != 1 {
		t.Errorf("upstream got %v; want the first message only", got)
	}
	up.mu.Lock()
	sessions := up.sessions
	up.mu.Unlock()
	if sessions != 1 {
		t.Errorf("%d sessions; want 1 (the 421 paces the destination)", sessions)
	}
	if len(s.Paces()) != 1 {
		t.Errorf("paces %+v; want the destination paced", s.Paces())
	}
	ents, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, ent := range ents {
		env, _, err := sp.Read(ent.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(env.LastReply, "4.7.28") {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d messages have the 421 4.7.28 as their last reply; want 1, the one whose MAIL got it", refused)
	}
}
