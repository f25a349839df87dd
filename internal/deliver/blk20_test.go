package deliver

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// refusingNotices fails every notice while full is set, the way a full
// spool disk does, and records those it takes.
type refusingNotices struct {
	notices
	full bool
}

func (n *refusingNotices) Notify(k bounce.Kind, env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) error {
	if n.full {
		return errors.New("bounce: notice: write content: no space left on device")
	}
	return n.notices.Notify(k, env, content, rcpts)
}

// queueNotify queues one message to rcpt whose recipient asks for
// notify (RCPT NOTIFY=...).
func queueNotify(t *testing.T, sp *spool.Spool, rcpt, notify string) string {
	t.Helper()
	w, err := sp.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	env := &spool.Envelope{From: "a@example.com", Arrival: t0, Client: "127.0.0.1:1",
		Recipients: []spool.Recipient{{Addr: rcpt, Status: spool.Pending, Notify: notify}}}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// TestBlk20NoticeNotQueuedKeepsMessage: a delivery status notification
// the spool cannot take (a full disk) was only logged ("delivery status
// notification not sent"), and the message went on as if it had been
// queued: a recipient relayed with NOTIFY=SUCCESS to an upstream without
// DSN was deleted with its "relayed" notice never sent, a refused one was
// moved to failed (.envelope.bad) with no bounce ever sent, and a delay
// warning was marked sent. As in Postfix (sent(), bounce_append() and
// defer_append() fall back to "deferred" when the trace or bounce
// service fails), the recipient is deferred instead and tried again, a
// duplicate rather than a notice lost; the warning is tried again.
func TestBlk20NoticeNotQueuedKeepsMessage(t *testing.T) {
	up := startUpstream(t)
	up.set("gone@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	up.set("slow@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	for _, tc := range []struct {
		rcpt, notify string
		kind         bounce.Kind
		gone         bool        // once the notice is queued: delivered
		final        spool.State // or left in this state
	}{
		{"ok@example.net", "SUCCESS", bounce.Success, true, 0},
		{"gone@example.net", "", bounce.Failure, false, spool.Failed},
		{"slow@example.net", "", bounce.Delay, false, spool.Ready},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			sp, s, clk, _ := setup(t, up.addr)
			id := queueNotify(t, sp, tc.rcpt, tc.notify)
			ns := &refusingNotices{full: true}
			s.opts.Notices = ns
			s.opts.DelayWarning = time.Hour
			clk.Advance(2 * time.Hour)
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			env, st, err := sp.Read(id)
			if err != nil || st != spool.Ready {
				t.Fatalf("after a %v notice the spool could not take: state %v, %v; want the message Ready", tc.kind, st, err)
			}
			if r := env.Recipients[0]; r.Status != spool.Deferred || !env.Warned.IsZero() {
				t.Errorf("recipient %s, warned %v; want deferred, not warned, so that the notice is tried again", r.Status, env.Warned)
			}
			// Room again: the next attempt queues the notice.
			ns.full = false
			clk.Advance(time.Hour)
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			ns.mu.Lock()
			got := ns.got
			ns.mu.Unlock()
			if len(got) != 1 || got[0].kind != tc.kind || len(got[0].rcpts) != 1 || got[0].rcpts[0] != tc.rcpt {
				t.Errorf("notices once there is room: %+v; want one %v notice about %s", got, tc.kind, tc.rcpt)
			}
			_, st, err = sp.Read(id)
			if tc.gone {
				if err == nil {
					t.Errorf("message still in the spool (%v) after it was delivered and its notice queued", st)
				}
			} else if err != nil || st != tc.final {
				t.Errorf("state once the notice is queued: %v, %v; want %v", st, err, tc.final)
			}
		})
	}
}

// TestBlk20NoticeNotQueuedExpired: a message that has outlived the queue
// owes no notice the spool keeps refusing: it is not kept to be sent
// again for ever (a relayed recipient would get it at every back-off).
func TestBlk20NoticeNotQueuedExpired(t *testing.T) {
	up := startUpstream(t)
	sp, s, clk, _ := setup(t, up.addr)
	id := queueNotify(t, sp, "ok@example.net", "SUCCESS")
	s.opts.Notices = &refusingNotices{full: true}
	s.opts.MaxLifetime = time.Hour
	clk.Advance(2 * time.Hour)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, st, err := sp.Read(id); err == nil {
		t.Errorf("an expired message whose notice failed is still queued (%v); want it delivered and gone", st)
	}
}
