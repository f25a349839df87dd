package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud5BanPendingHoldsNewMail: a client whose spam Gmail refused is
// banned ban_delay (here 3s) later; the mail it submits meanwhile (on a new
// connection within the delay, and on a session it opened before the ban
// took effect and uses after) is held, as the rest of its queued mail is,
// never sent on to cost the relay more reputation. Before the fix both
// messages went to Gmail.
func TestAud5BanPendingHoldsNewMail(t *testing.T) {
	t.Parallel()
	gmail, r := spamGmailRelay(t, false, "3s")
	const client = "127.0.0.5"

	// A session opened now, before any ban, used after the ban is in force.
	early, greet, err := dialFrom(r.addr(), client)
	if err != nil || greet.code() != 220 {
		t.Fatalf("early session: %v %q", err, greet)
	}
	defer early.Close()
	if _, err := early.cmd("EHLO early.e2e.test"); err != nil {
		t.Fatal(err)
	}

	tx, err := sendFrom(r.addr(), client, "alice@clean.example", []string{"spam@gmail.test"}, gmailMessage("alice@clean.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send spam: %v %+v", err, tx)
	}
	spam := queuedID(t, tx.Final)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == spam })

	// Within the ban delay: the client may still connect, and its mail is kept.
	tx, err = sendFrom(r.addr(), client, "alice@clean.example", []string{"ok@gmail.test"}, gmailMessage("alice@clean.example", "within delay"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send within the ban delay: %v %+v; want accepted (and held)", err, tx)
	}
	within := queuedID(t, tx.Final)

	r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == client })
	late, err := early.send("alice@clean.example", []string{"ok2@gmail.test"}, gmailMessage("alice@clean.example", "old session"))
	if err != nil || late.Final.code() != 250 {
		t.Fatalf("send on the session opened before the ban: %v %+v", err, late)
	}
	old := queuedID(t, late.Final)
	early.cmd("QUIT")

	sameClient := func(got, ip string) bool { return got == ip || strings.HasPrefix(got, ip+":") }
	for _, id := range []string{within, old} {
		h := r.waitEvent("hold", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
		if !sameClient(h.Get("client"), client) || h.Get("reason") != "client banned" {
			t.Errorf("hold line for %s: %v; want client=%s[:PORT] reason=\"client banned\"", id, h.Fields, client)
		}
		if s := msgState(r.spool, id); s != "held" {
			t.Errorf("message %s from the banned client is %s; want held", id, s)
		}
	}
	time.Sleep(500 * time.Millisecond)
	for _, rcpt := range []string{"ok@gmail.test", "ok2@gmail.test"} {
		for _, tx := range gmail.Transactions() {
			for _, to := range tx.To() {
				if strings.EqualFold(to, rcpt) && tx.MailFrom != "" {
					t.Errorf("Gmail got the banned client's message to %s: %s", rcpt, tx.MailFrom)
				}
			}
		}
	}
}

// TestAud5BanPendingProxyRefusesMail: in proxy mode, where nothing can be
// held, a client whose spam Gmail refused is refused at MAIL from the
// moment of the refusal (its own session heard Gmail's reply already); the
// ban at connect follows ban_delay later. Before the fix its next message,
// sent within the delay, went to Gmail live.
func TestAud5BanPendingProxyRefusesMail(t *testing.T) {
	t.Parallel()
	gmail, r := spamGmailRelay(t, true, "3s")
	const client = "127.0.0.5"
	tx, err := sendFrom(r.addr(), client, "alice@clean.example", []string{"spam@gmail.test"}, gmailMessage("alice@clean.example", "spam"))
	if err != nil || tx.Final.code() != 550 {
		t.Fatalf("send spam: %v %+v; want Gmail's 550", err, tx)
	}
	tx, err = sendFrom(r.addr(), client, "alice@clean.example", []string{"ok@gmail.test"}, gmailMessage("alice@clean.example", "within delay"))
	if err != nil || tx.Greeting.code() != 220 {
		t.Fatalf("connect within the ban delay: %v %+v; want greeted (the ban is not in force yet)", err, tx)
	}
	want := "554 5.7.1 " + relayDomain + ": " + client + " is banned until "
	if len(tx.Mail) != 1 || !strings.HasPrefix(tx.Mail[0], want) {
		t.Errorf("MAIL within the ban delay heard %q; want %q...", tx.Mail, want)
	}
	for _, gtx := range gmail.Transactions() {
		if slices.Contains(gtx.To(), "ok@gmail.test") {
			t.Errorf("Gmail got the banned client's message sent within the ban delay")
		}
	}
}

// spamGmailRelay starts a fake Gmail refusing mail to spam@gmail.test as
// unsolicited, and a relay (a proxy when proxy) forwarding to it with
// ban_delay delay.
func spamGmailRelay(t *testing.T, proxy bool, delay string) (*fakeGmail, *relay) {
	t.Helper()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	return gmail, startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, config: "[enforce]\nban_delay = \"" + delay + "\"\n"})
}

// TestAud5ReinjectIgnoresFilterBan: the content filter's return path
// (--interface reinject=) is not refused when the filter's own address is
// banned. A loopback client that the administrator's welcomelist does not
// list is banned like any other (here by hand, as after its spam); the
// content filter (a real Postfix) reinjects from that same 127.0.0.1, and
// every other client's mail must still get through. Before the fix the
// reinject listener refused the filter at connect with the ban's 554, and
// no message of anyone's left the filter.
func TestAud5ReinjectIgnoresFilterBan(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{
		config: fmt.Sprintf("[enforce]\nban_delay = \"30s\"\n[routing]\ncontent_filter = %q\n", filter.Addr()),
		extra:  []string{"--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject)},
	})
	if code, out, errOut := runCLI(t, "bans", "--spool-dir", r.spool, "add", "127.0.0.1", "--reason", "a local web form sent spam"); code != 0 {
		t.Fatalf("bans add: %d %q %q", code, out, errOut)
	}
	time.Sleep(6 * time.Second) // the relay's reload
	tx, err := sendFrom(r.addr(), "127.0.0.6", "bob@clean.example", []string{"carol@gmail.test"}, gmailMessage("bob@clean.example", "through the filter"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if !waitFor(30*time.Second, func() bool {
		return len(gmail.txs(func(tx harness.Transaction) bool {
			return tx.Accepted() && slices.Contains(tx.To(), "carol@gmail.test")
		})) > 0
	}) {
		t.Errorf("the message of 127.0.0.6 never reached Gmail through the content filter; %d reject lines, the last %v",
			len(r.events("reject")), fieldsOf(r.events("reject")[max(0, len(r.events("reject"))-1):]))
	}

	// A client whose ban starts within ban_delay (as after its spam):
	// its message comes back through the filter and is held, and the
	// hold line names that client, not the filter's return address.
	from := time.Now().Add(25 * time.Second).UTC().Format(time.RFC3339)
	f, err := os.OpenFile(enforceFile(r, "bans"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "127.0.0.7 until=2099-01-01T00:00:00Z from=%s reason=\"spam\"\n", from)
	f.Close()
	time.Sleep(6 * time.Second) // the relay's reload
	tx, err = sendFrom(r.addr(), "127.0.0.7", "eve@clean.example", []string{"dan@gmail.test"}, gmailMessage("eve@clean.example", "banned soon"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send from the client about to be banned: %v %+v", err, tx)
	}
	h := r.waitEvent("hold", 30*time.Second, nil)
	if c := h.Get("client"); c != "127.0.0.7" && !strings.HasPrefix(c, "127.0.0.7:") {
		t.Errorf("hold line %v; want client=127.0.0.7, the client that submitted it", h.Fields)
	}
}
