package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// senderAccess is a Postfix sender_access file with one line per action.
const senderAccess = `# Postfix access(5) text, as postmap would read it
example.com      REJECT
spam.example     550 5.7.1 go away
later.example    DEFER
held.example     HOLD
gone.example     DISCARD
ok.example       OK
warn.example     WARN watch this
nothing.example  DUNNO
`

// attempt is one message sent on a connection of its own from a given
// loopback address: the RCPT reply and, if that was accepted, the reply to
// the final dot.
type attempt struct {
	rcpt, final reply
	client      string
}

func tryMessage(t *testing.T, addr, fromIP, sender, rcpt string) attempt {
	t.Helper()
	c := mustDial(t, addr, fromIP)
	defer c.Close()
	a := attempt{client: c.conn.LocalAddr().String()}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	tx, err := c.send(sender, []string{rcpt}, message("from "+sender))
	if err != nil && err != errRefused {
		t.Fatalf("send from %s to %s: %v; transaction %+v", sender, rcpt, err, tx)
	}
	if tx.Mail.code() != 250 {
		t.Fatalf("MAIL FROM:<%s> = %q; want 250 (restrictions are applied at RCPT)", sender, tx.Mail)
	}
	a.rcpt = tx.Rcpt[0]
	a.final = tx.Final
	c.cmd("QUIT")
	return a
}

// TestPolicyAccessActions: each access(5) action read from a real
// sender_access file, plus check_client_access with a cidr: file and
// check_recipient_access with a regexp: file, from a client outside
// mynetworks to a relay domain, with a smarthost behind: the refusals have
// Postfix's exact texts and are logged as the client heard them; HOLD
// accepts and keeps the message as ID.envelope.held, never delivered;
// DISCARD answers 250 and keeps nothing; OK, WARN (logged) and DUNNO
// accept and deliver.
func TestPolicyAccessActions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := writeFile(t, dir, "sender_access", senderAccess, 0o644)
	client := writeFile(t, dir, "client.cidr", "127.0.0.66/32   REJECT blocked by client.cidr\n127.0.0.0/8     DUNNO\n", 0o644)
	rcpt := writeFile(t, dir, "recipient.regexp", "/^blocked-[0-9]+@relay\\.example$/ REJECT no such user here\n", 0o644)
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
%srelay_domains = ["relay.example"]
client_restrictions = ["check_client_access cidr:%s"]
sender_restrictions = ["check_sender_access hash:%s"]
recipient_restrictions = ["check_recipient_access regexp:%s"]
`, outsideNetworks, client, sender, rcpt), "--forward-to", sink.Addr(), "--forward-on-disconnect")

	const to = "user@relay.example"
	refusals := []struct {
		fromIP, sender, rcpt, want string
	}{
		// The Postfix guide's example, exactly.
		{"127.0.0.1", "spammer@example.com", to, "554 5.7.1 <spammer@example.com>: Sender address rejected: Access denied"},
		// Postfix's default parent_domain_matches_subdomains covers
		// access maps: example.com also matches its subdomains.
		{"127.0.0.1", "spammer@mail.example.com", to, "554 5.7.1 <spammer@mail.example.com>: Sender address rejected: Access denied"},
		{"127.0.0.1", "x@spam.example", to, "550 5.7.1 <x@spam.example>: Sender address rejected: go away"},
		{"127.0.0.1", "x@later.example", to, "450 4.7.1 <x@later.example>: Sender address rejected: Access denied"},
		{"127.0.0.1", "x@ok.example", "blocked-1@relay.example", "554 5.7.1 <blocked-1@relay.example>: Recipient address rejected: no such user here"},
	}
	for _, c := range refusals {
		a := tryMessage(t, r.addr(), c.fromIP, c.sender, c.rcpt)
		if a.rcpt.String() != c.want {
			t.Errorf("from %s, MAIL FROM:<%s> RCPT TO:<%s> = %q; want %q", c.fromIP, c.sender, c.rcpt, a.rcpt, c.want)
		}
		var es []*maillog.Entry
		waitFor(5*time.Second, func() bool { es = clientRejects(r, a.client); return len(es) > 0 })
		if len(es) != 1 || es[0].Get("stage") != "rcpt" || es[0].Get("reply") != a.rcpt.String() ||
			es[0].Get("from") != "<"+c.sender+">" || es[0].Get("to") != "<"+c.rcpt+">" {
			t.Errorf("reject lines for %s: %v; want one stage=rcpt reply=%q from=<%s> to=<%s>", c.sender, fields(es), a.rcpt.String(), c.sender, c.rcpt)
		}
	}

	// check_client_access cidr: refuses 127.0.0.66 whatever the sender.
	// The client's name in the text is checked by
	// TestPolicyAccessClientText; here only that the cidr rule decided.
	a := tryMessage(t, r.addr(), "127.0.0.66", "x@ok.example", to)
	if want := "[127.0.0.66]>: Client host rejected: blocked by client.cidr"; a.rcpt.code() != 554 || !strings.HasSuffix(a.rcpt.String(), want) {
		t.Errorf("from 127.0.0.66: RCPT = %q; want 554 5.7.1 <...%s", a.rcpt, want)
	}
	if es := clientRejects(r, a.client); len(es) != 1 || es[0].Get("rule") != "check_client_access cidr:"+client {
		t.Errorf("reject lines for 127.0.0.66: %v; want one with rule=\"check_client_access cidr:%s\"", fields(es), client)
	}

	accepted := map[string]attempt{}
	for _, s := range []string{"x@held.example", "x@gone.example", "x@ok.example", "x@warn.example", "x@nothing.example"} {
		a := tryMessage(t, r.addr(), "127.0.0.1", s, to)
		if a.rcpt.code() != 250 || a.final.code() != 250 {
			t.Errorf("MAIL FROM:<%s>: RCPT %q, final %q; want both 250", s, a.rcpt, a.final)
			continue
		}
		queuedID(t, a.final)
		accepted[s] = a
	}
	heldID := queuedID(t, accepted["x@held.example"].final)
	goneID := queuedID(t, accepted["x@gone.example"].final)

	// OK, WARN and DUNNO are delivered; HOLD and DISCARD are not.
	sink.WaitCount(t, 3, 15*time.Second)
	time.Sleep(500 * time.Millisecond) // a fourth would show up now
	var got []string
	for _, m := range sink.Messages() {
		got = append(got, m.From)
	}
	slices.Sort(got)
	if want := []string{"x@nothing.example", "x@ok.example", "x@warn.example"}; !slices.Equal(got, want) {
		t.Errorf("the smarthost got messages from %q; want %q", got, want)
	}
	files := waitSpool(t, r.spool, 10*time.Second, "the held message only", func(f map[string][]string) bool { return len(f) == 1 })
	if !slices.Equal(files[heldID], []string{"content", "envelope.held"}) {
		t.Errorf("spool holds %v; want %s.content and %s.envelope.held only", files, heldID, heldID)
	}
	if _, err := os.Stat(filepath.Join(r.spool, goneID+".content")); !os.IsNotExist(err) {
		t.Errorf("discarded message %s: content file stat: %v; want it never kept", goneID, err)
	}
	r.waitEvent("hold", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == heldID })
	r.waitEvent("discard", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == goneID })
	for _, e := range r.events("accept") {
		if e.Get("id") == goneID {
			t.Errorf("discarded message has an accept line: %v", e.Fields)
		}
	}
	if w := waitDiag(r, 5*time.Second, "policy warning", "from=x@warn.example", `warning="watch this"`); len(w) != 1 {
		t.Errorf("diagnostic log lines for WARN watch this: %q; want one \"policy warning\" line naming x@warn.example", w)
	}
}

// TestPolicyAccessReload: a sender_access file edited while the relay runs
// is used within the reload period (5 s) without a signal, and at once
// after SIGHUP; a version with a bad line is refused with FILE:LINE in the
// log, and the version before it stays in force.
func TestPolicyAccessReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "sender_access", "old.example REJECT old rule\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\n%srelay_domains = [\"relay.example\"]\nsender_restrictions = [\"check_sender_access hash:%s\"]\n",
		outsideNetworks, path))
	rcptReply := func(sender string) reply {
		return tryMessage(t, r.addr(), "127.0.0.1", sender, "user@relay.example").rcpt
	}
	rejected := func(sender, text string) string {
		return "554 5.7.1 <" + sender + ">: Sender address rejected: " + text
	}
	if got := rcptReply("x@new.example"); got.code() != 250 {
		t.Fatalf("x@new.example before the edit: %q; want 250", got)
	}

	// An edit, no signal.
	writeFile(t, dir, "sender_access", "old.example REJECT old rule\nnew.example REJECT new rule\n", 0o644)
	edited := time.Now()
	var got reply
	if !waitFor(8*time.Second, func() bool { got = rcptReply("x@new.example"); return got.code() != 250 }) {
		t.Fatalf("x@new.example still %q 8s after the table was edited; want the edit in force within ~6s", got)
	}
	t.Logf("edit picked up after %v", time.Since(edited).Round(100*time.Millisecond))
	if want := rejected("x@new.example", "new rule"); got.String() != want {
		t.Errorf("x@new.example after the edit = %q; want %q", got, want)
	}

	// An edit and SIGHUP: in force at once.
	writeFile(t, dir, "sender_access", "old.example REJECT old rule\nnew.example REJECT new rule\nhup.example REJECT after hup\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(time.Second, func() bool { got = rcptReply("x@hup.example"); return got.code() != 250 }) {
		t.Errorf("x@hup.example still %q 1s after SIGHUP; want the edit in force", got)
	} else if want := rejected("x@hup.example", "after hup"); got.String() != want {
		t.Errorf("x@hup.example after SIGHUP = %q; want %q", got, want)
	}

	// A bad line: the whole new version is refused, with FILE:LINE.
	writeFile(t, dir, "sender_access", "bad.example REJECT bad\nthis-key-has-no-value\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	lines := waitDiag(r, 8*time.Second, "table not reloaded", path+":2:")
	if len(lines) == 0 {
		t.Errorf("no diagnostic line naming %s:2 after a bad edit; stderr:\n%s", path, r.stderr())
	}
	if got := rcptReply("x@bad.example"); got.code() != 250 {
		t.Errorf("x@bad.example from the refused version = %q; want 250 (the refused version must not be used)", got)
	}
	for _, s := range []struct{ sender, text string }{{"x@new.example", "new rule"}, {"x@hup.example", "after hup"}, {"x@old.example", "old rule"}} {
		if got, want := rcptReply(s.sender), rejected(s.sender, s.text); got.String() != want {
			t.Errorf("%s after a refused reload = %q; want %q (the old table stays in force)", s.sender, got, want)
		}
	}
	if n := strings.Count(r.stderr(), "level=ERROR"); n == 0 {
		t.Errorf("a refused table reload was not logged as an error")
	}
}

// TestPolicyAccessClientText: a check_client_access refusal is worded as
// Postfix words it, "<unknown[IP]>: Client host rejected: TEXT": Postfix
// names a client whose address has no verified name "unknown", and
// relaykeeper never looks names up.
func TestPolicyAccessClientText(t *testing.T) {
	t.Parallel()
	client := writeFile(t, t.TempDir(), "client.cidr", "127.0.0.66/32 REJECT\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\nclient_restrictions = [\"check_client_access cidr:%s\"]\n", client))
	a := tryMessage(t, r.addr(), "127.0.0.66", "x@example.org", "user@example.net")
	if want := "554 5.7.1 <unknown[127.0.0.66]>: Client host rejected: Access denied"; a.rcpt.String() != want {
		t.Errorf("from 127.0.0.66: RCPT = %q; want %q", a.rcpt, want)
	}
}
