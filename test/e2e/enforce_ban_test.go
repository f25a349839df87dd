package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestEnforceBan: a client on 127.0.0.5 whose message Gmail refuses as
// spam is banned ban_delay (1s) after the refusal: the "ban" line, the ban
// file, a 554 at its next connection before EHLO, its other queued message
// held; a client on 127.0.0.6 is unaffected; "bans list" shows the ban and
// "bans remove" lifts it within the relay's 5-second reload.
func TestEnforceBan(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	gmail.answer("slow@gmail.test", stData, "451 4.3.0 Mail server temporarily rejected message. {id} - gsmtp")
	// A deferred message stays ready (and unclaimed) for a minute.
	cfg := "[enforce]\nban_delay = \"1s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	const banned, other = "127.0.0.5", "127.0.0.6"

	// A message from .5 deferred by Gmail: it waits, ready, in the spool.
	tx, err := sendFrom(r.addr(), banned, "alice@clean.example", []string{"slow@gmail.test"}, gmailMessage("alice@clean.example", "waiting"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	waiting := queuedID(t, tx.Final)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == waiting && e.Get("result") == "deferred"
	})
	waitFor(5*time.Second, func() bool { return msgState(r.spool, waiting) == "ready" })
	if s := msgState(r.spool, waiting); s != "ready" {
		t.Fatalf("deferred message %s is %s; want ready", waiting, s)
	}

	// The spam.
	tx, err = sendFrom(r.addr(), banned, "alice@clean.example", []string{"spam@gmail.test"}, gmailMessage("alice@clean.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	spam := queuedID(t, tx.Final)
	refused := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == spam })
	if refused.Get("result") != "bounced" {
		t.Errorf("delivery of the spam: %v; want result=bounced", refused.Fields)
	}
	ban := r.waitEvent("ban", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == banned })
	// ban_delay is honoured to the second only (TestEnforceBanDelay).
	if d := ban.Time.Sub(refused.Time); d < 0 || d > 3*time.Second {
		t.Errorf("ban line %v after the refusal; want ban_delay, 1s", d)
	}
	sent := gmail.lastSent("spam@gmail.test")
	if ban.Get("id") != spam || ban.Get("rule") != "gmail-unsolicited" || ban.Get("reply") != joinedReply(sent) {
		t.Errorf("ban line %v; want id=%s rule=gmail-unsolicited reply=%q", ban.Fields, spam, joinedReply(sent))
	}
	until, err := time.Parse(time.RFC3339, ban.Get("until"))
	if err != nil || until.Sub(ban.Time) < 4*time.Hour-5*time.Second || until.Sub(ban.Time) > 4*time.Hour+5*time.Second {
		t.Errorf("ban until=%q (%v); want 4 hours from now", ban.Get("until"), err)
	}
	if n := len(r.events("ban")); n != 1 {
		t.Errorf("%d ban lines; want 1", n)
	}

	// Its other message is held, not sent.
	if hs := eventsWith(r, "hold", "id", waiting); len(hs) != 1 || hs[0].Get("client") != banned {
		t.Errorf("hold lines for %s: %v; want one with client=%s", waiting, fieldsOf(hs), banned)
	}
	if _, err := os.Stat(filepath.Join(r.spool, waiting+".envelope.held")); err != nil {
		t.Errorf("%s.envelope.held: %v; the client's queued message is to be held", waiting, err)
	}

	// The ban file.
	reason := "gmail-unsolicited: " + reasonText(joinedReply(sent))
	data, err := os.ReadFile(enforceFile(r, "bans"))
	if err != nil {
		t.Fatalf("ban file: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	banLine := regexp.MustCompile(`^127\.0\.0\.5 until=` + regexp.QuoteMeta(ban.Get("until")) + ` reason="` +
		regexp.QuoteMeta(reason) + `" added=(\S+) from=(\S+)$`)
	if len(lines) != 1 || !banLine.MatchString(lines[0]) {
		t.Errorf("ban file entries %q; want one matching %s", lines, banLine)
	} else {
		m := banLine.FindStringSubmatch(lines[0])
		added, _ := time.Parse(time.RFC3339, m[1])
		from, _ := time.Parse(time.RFC3339, m[2])
		if d := from.Sub(added); d < time.Second || d > 2*time.Second {
			t.Errorf("ban file: from=%s added=%s; want from 1s after added (ban_delay)", m[2], m[1])
		}
	}

	// Its next connection: 554 at connect, and the connection closes.
	c, greet, err := dialFrom(r.addr(), banned)
	want := "554 5.7.1 " + relayDomain + ": " + banned + " is banned until " + ban.Get("until") + ": " + reason
	if err != nil || greet.String() != want {
		t.Errorf("greeting to the banned client = %q (%v); want %q", greet, err, want)
	}
	if c != nil {
		if rep, err := c.read(); err == nil {
			t.Errorf("banned client's connection still open after the 554: read %q", rep)
		}
		c.Close()
	}
	if rs := eventsWith(r, "connect", "client", banned); len(rs) > 2 {
		t.Logf("connect lines for %s: %v", banned, fieldsOf(rs))
	}

	// Another client is unaffected.
	tx, err = sendFrom(r.addr(), other, "bob@clean.example", []string{"ok@gmail.test"}, gmailMessage("bob@clean.example", "other client"))
	if err != nil || tx.Greeting.code() != 220 || tx.Final.code() != 250 {
		t.Fatalf("client %s after the ban: %v %+v; want accepted", other, err, tx)
	}
	okID := queuedID(t, tx.Final)
	if e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == okID }); e.Get("result") != "sent" {
		t.Errorf("delivery of %s's message: %v; want sent", other, e.Fields)
	}

	// relaykeeper bans list.
	code, out, errOut := runCLI(t, "bans", "--spool-dir", r.spool, "list")
	listLine := regexp.MustCompile(`(?m)^127\.0\.0\.5 +\S+ +` + regexp.QuoteMeta(ban.Get("until")) + ` +` + regexp.QuoteMeta(reason) + `$`)
	if code != 0 || !strings.HasPrefix(out, "IP ") || !listLine.MatchString(out) || strings.Count(out, "\n") != 2 {
		t.Errorf("bans list: exit %d, stdout %q, stderr %q; want the header and one line matching %s", code, out, errOut, listLine)
	}

	// relaykeeper bans remove: the relay notices within its 5s reload.
	code, out, errOut = runCLI(t, "bans", "--spool-dir", r.spool, "remove", banned)
	if code != 0 || out != banned+" no longer banned\n" {
		t.Errorf("bans remove: exit %d, %q, %q; want 0, %q", code, out, errOut, banned+" no longer banned\n")
	}
	removed := time.Now()
	var last reply
	lifted := waitFor(7*time.Second, func() bool {
		c, greet, err := dialFrom(r.addr(), banned)
		if err == nil {
			c.cmd("QUIT")
			c.Close()
		}
		last = greet
		if greet.code() == 220 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
		return false
	})
	if !lifted {
		t.Fatalf("client %s still refused %v after bans remove: %q", banned, time.Since(removed).Round(time.Millisecond), last)
	}
	t.Logf("ban lifted %v after bans remove", time.Since(removed).Round(100*time.Millisecond))
	// The mail log says so, as it said ban: the ban's end, and why.
	if e := r.waitEvent("unban", 7*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == banned }); e.Get("reason") != "lifted" || e.Get("until") != ban.Get("until") {
		t.Errorf("unban line after bans remove: %v; want client=%s until=%s reason=lifted", e.Fields, banned, ban.Get("until"))
	}
	tx, err = sendFrom(r.addr(), banned, "alice@clean.example", []string{"ok@gmail.test"}, gmailMessage("alice@clean.example", "after the ban"))
	if err != nil || tx.Final.code() != 250 {
		t.Errorf("client %s after bans remove: %v %+v; want accepted", banned, err, tx)
	}
	if s := msgState(r.spool, waiting); s != "held" {
		t.Errorf("held message %s is %s after bans remove; want still held (an administrator releases it)", waiting, s)
	}
	if n := rcptTried(gmail.FakeSMTP, "slow@gmail.test"); n != 1 {
		t.Errorf("Gmail saw the held message %d times; want 1", n)
	}
}

// TestEnforceWelcomelistSpares: the same spam refusal for a client on the
// welcomelist bans nobody: a "spare" line, the message forwarded
// encapsulated (not bounced), the client still welcome.
func TestEnforceWelcomelistSpares(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	const friend = "127.0.0.7"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{welcome: "192.0.2.1\n" + friend + "  # a partner\n"})

	tx, err := sendFrom(r.addr(), friend, "alice@friend.example", []string{"spam@gmail.test"}, gmailMessage("alice@friend.example", "spared"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	spare := r.waitEvent("spare", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == friend })
	if spare.Get("id") != id || spare.Get("rule") != "gmail-unsolicited" || spare.Get("reason") != "welcomelisted" {
		t.Errorf("spare line %v; want id=%s rule=gmail-unsolicited reason=welcomelisted", spare.Fields, id)
	}
	enc := r.waitEvent("encapsulate", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == id })
	if enc.Get("to") != "<spam@gmail.test>" || enc.Get("client") != friend {
		t.Errorf("encapsulate line %v; want to=<spam@gmail.test> client=%s", enc.Fields, friend)
	}
	if !waitFor(10*time.Second, func() bool { return len(gmail.copiesTo("spam@gmail.test")) == 1 && msgState(r.spool, id) == "gone" }) {
		t.Fatalf("copies delivered %d, original %s; want 1 copy and the original gone", len(gmail.copiesTo("spam@gmail.test")), msgState(r.spool, id))
	}
	cp := gmail.copiesTo("spam@gmail.test")[0]
	if header(cp.Data, "X-Relaykeeper-Encapsulated") != "1" {
		t.Errorf("copy header:\n%s\nwant X-Relaykeeper-Encapsulated: 1", head(string(cp.Data)))
	}
	time.Sleep(1500 * time.Millisecond) // longer than ban_delay
	if es := enforceEvents(r, friend); actionOf(es) != "spare+encapsulate" {
		t.Errorf("events about %s: %v; want spare and encapsulate only", friend, fieldsOf(es))
	}
	if data, _ := os.ReadFile(enforceFile(r, "bans")); strings.Contains(string(data), friend) {
		t.Errorf("ban file lists the welcomelisted client:\n%s", data)
	}
	if bounces := gmail.txs(func(tx hTx) bool { return tx.MailFrom == "" }); len(bounces) != 0 {
		t.Errorf("Gmail got %d bounces; want none (the message was forwarded encapsulated)", len(bounces))
	}
	c := mustDial(t, r.addr(), friend)
	mustCmd(t, c, "250", "EHLO client.e2e.test")

	// Through a proxy: spared and forwarded encapsulated too, and heard
	// as delivered, as the store-and-forward relay counts it (rep20: the
	// client heard Gmail's 550, and its sender got a bounce for a message
	// the recipient got as an attachment).
	px := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, welcome: friend + "\n"})
	gmail.answer("spam2@gmail.test", stData, gmailUnsolicited)
	tx, err = sendFrom(px.addr(), friend, "alice@friend.example", []string{"spam2@gmail.test"}, gmailMessage("alice@friend.example", "spared proxy"))
	if want := (reply{"250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: 5.7.1)"}); err != nil || !slices.Equal(tx.Final, want) {
		t.Errorf("proxy client heard %q (%v); want %q", tx.Final, err, want)
	}
	if !waitFor(10*time.Second, func() bool { return len(gmail.copiesTo("spam2@gmail.test")) == 1 }) {
		t.Errorf("proxy: no encapsulated copy of the welcomelisted client's message")
	}
	if es := enforceEvents(px, friend); actionOf(es) != "spare+encapsulate" {
		t.Errorf("proxy: events about %s: %v; want spare and encapsulate", friend, fieldsOf(es))
	}
}

// TestEnforceWelcomelistNoDomainBlock: docs/enforce.md: "A client on the
// welcomelist is never banned and its domain never blocked: its refused
// mail is encapsulated instead." A welcomelisted client's message refused
// for the sending domain's reputation must not block the domain.
func TestEnforceWelcomelistNoDomainBlock(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	const friend = "127.0.0.7"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{welcome: friend + "\n"})
	tx, err := sendFrom(r.addr(), friend, "x@partner.example", []string{"dom@gmail.test"}, gmailMessage("x@partner.example", "partner"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	waitFor(5*time.Second, func() bool { s := msgState(r.spool, id); return s != "claimed" && s != "new" })
	time.Sleep(300 * time.Millisecond)
	access, _ := os.ReadFile(enforceFile(r, "sender_access"))
	if strings.Contains(string(access), "partner.example") {
		t.Errorf("sender_access blocks the welcomelisted client's domain:\n%s", access)
	}
	if es := enforceEvents(r, friend); actionOf(es) != "spare+encapsulate" {
		t.Errorf("events about welcomelisted %s: %v; want spare and encapsulate, as for a ban", friend, fieldsOf(es))
	}
	if s := msgState(r.spool, id); s != "gone" {
		t.Errorf("message %s is %s; want forwarded encapsulated (gone)", id, s)
	}
	// The domain's next message.
	c := mustDial(t, r.addr(), friend)
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<y@partner.example>")
}
