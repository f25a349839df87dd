package deliver

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
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

// queueRcpts queues a message from a@example.com, client 127.0.0.1:1, and
// returns its id.
func queueRcpts(t *testing.T, sp *spool.Spool, rcpts ...string) string {
	t.Helper()
	w, err := sp.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	env := &spool.Envelope{From: "a@example.com", Arrival: t0, Client: "127.0.0.1:1"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: r, Status: spool.Pending})
	}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// holdingRefusals bans the client of every refused message, and holds
// its ready messages, as enforce.Enforcer does (markPending, holdMarked): a message
// claimed by a worker is left to its own refusal.
type holdingRefusals struct{ sp *spool.Spool }

func (h holdingRefusals) Refused(r Result) Effect {
	ents, _ := h.sp.List()
	for _, ent := range ents {
		if ent.State != spool.Ready {
			continue
		}
		env, _, err := h.sp.Read(ent.ID)
		if err != nil || env.Client != r.Env.Client {
			continue
		}
		if c, err := h.sp.Lock(ent.ID); err == nil {
			c.Move(spool.Held)
		}
	}
	return Effect{Hold: true}
}

// TestAheadBannedClient: a refusal that bans a message's client holds the
// client's other queued mail; the batch's next message, claimed early to
// begin its transaction behind the final dot, is one of them and must be
// held too, not sent (it was, since the enforcer leaves claimed messages
// to their own refusal).
func TestAheadBannedClient(t *testing.T) {
	up := startUpstream(t)
	up.set("spam@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Our system has detected an unusual rate of unsolicited mail originating from your IP address"})
	sp, s, _, _ := setup(t, up.addr, "a@example.net", "spam@example.net")
	queueRcpts(t, sp, "b@example.net", "spam@example.net")
	s.opts.Refusals = holdingRefusals{sp}
	s.opts.Connections = 1
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := up.got(); len(got) != 1 {
		t.Errorf("upstream got %v; want only the first message's good recipient (its client is banned then)", got)
	}
	ents, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, ent := range ents {
		if ent.State == spool.Held {
			held++
		}
	}
	if held != 1 {
		t.Errorf("%d messages held (%v); want 1, the second", held, ents)
	}
}

// TestParkForgetsNothing: a session holding the replies to a transaction
// begun ahead for a message that did not take them in its batch is closed,
// not parked: a later Send of that message on it would take replies given
// to an earlier attempt (here a refusal) as its own.
func TestParkForgetsNothing(t *testing.T) {
	up := startUpstream(t)
	up.set("b@example.net", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "receiving mail at a rate"})
	_, s, _, _ := setup(t, up.addr, "a@example.net")
	ctx := context.Background()
	conn, err := s.opts.Dial.Dial(ctx, up.addr)
	if err != nil {
		t.Fatal(err)
	}
	if !s.tryAcquire(up.addr, 0) {
		t.Fatal("no slot")
	}
	msg := func(to string) *remote.Message {
		return &remote.Message{From: "a@example.com", To: []string{to}, Body: strings.NewReader("Subject: t\r\n\r\nbody\r\n"), Size: 20}
	}
	if _, err := conn.SendAhead(ctx, msg("a@example.net"), msg("b@example.net")); err != nil {
		t.Fatal(err)
	}
	if !conn.Answered() || conn.Waiting() || conn.Broken() {
		t.Fatalf("Answered(), Waiting(), Broken() = %v, %v, %v; want true, false, false", conn.Answered(), conn.Waiting(), conn.Broken())
	}
	wc := &workerConn{s: s, conn: conn, key: up.addr, relay: up.addr, carried: 1}
	wc.park()
	if ic, ok := s.takeIdle(up.addr); ok {
		res, err := ic.conn.Send(ctx, msg("b@example.net"))
		t.Errorf("session parked with an earlier attempt's replies; a later Send got %+v, %v", res, err)
	}
}

// lockingRefusals tries, at each refusal, to lock every other message, as
// `relaykeeper queue hold` in another process would, and notes what it got.
type lockingRefusals struct {
	sp   *spool.Spool
	busy *[]string
}

func (l lockingRefusals) Refused(r Result) Effect {
	ents, _ := l.sp.List()
	for _, ent := range ents {
		if ent.ID == r.Env.ID {
			continue
		}
		c, err := l.sp.Lock(ent.ID)
		if err != nil {
			*l.busy = append(*l.busy, ent.ID+": "+err.Error())
			continue
		}
		c.Unlock()
	}
	return Effect{}
}

// TestAheadNoPipelining: toward an upstream without PIPELINING no
// transaction begins behind a final dot, so the batch's next message is
// not claimed before its turn: an administrator may still hold or delete
// it while the message before it is being sent.
func TestAheadNoPipelining(t *testing.T) {
	fake := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"8BITMIME", "ENHANCEDSTATUSCODES"},
		RcptFor: map[string]harness.Response{"no@example.net": {Reply: "550 5.1.1 no such user"}}})
	sp, s, _, _ := setup(t, fake.Addr(), "m0@example.net", "no@example.net")
	queueRcpts(t, sp, "m1@example.net", "no@example.net")
	var busy []string
	s.opts.Refusals = lockingRefusals{sp, &busy}
	s.opts.Connections = 1
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(busy) != 0 {
		t.Errorf("while a message was being sent, the next one could not be locked: %v", busy)
	}
}
