package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestGm22RelayAuthRequiredKeepsMail: the smarthost (smtp.gmail.com)
// answers MAIL FROM with "530-5.7.0 Authentication Required": the relay
// has not logged in, its own set-up. The administrator is alerted and the
// message stays queued, not bounced to its sender.
func TestGm22RelayAuthRequiredKeepsMail(t *testing.T) {
	t.Parallel()
	g := newFakeGmail(t)
	const from = "a@gm22auth.example"
	g.answer(from, stMail, "530-5.7.0 Authentication Required. Learn more at\r\n530 5.7.0  https://support.google.com/mail/?p=WantAuthError {id} - gsmtp")
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n"
	r := startEnforcer(t, g.Addr(), enforceOpts{config: cfg})
	tx, err := sendFrom(r.addr(), "127.0.3.20", from, []string{"u@gmail.test"}, gmailMessage(from, "gm22 auth"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("store: %v %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	r.waitEvent("admin-alert", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("rule") == "gmail-auth-required" })
	time.Sleep(300 * time.Millisecond)
	if s := msgState(r.spool, id); s != "ready" {
		t.Errorf("message %s is %s; want ready (kept for its retry)", id, s)
	}
	if es := enforceEvents(r, "127.0.3.20"); len(es) != 1 || es[0].Event != "admin-alert" {
		t.Errorf("events %v; want the alert only", fieldsOf(es))
	}
}
