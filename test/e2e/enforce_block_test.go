package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// senderAccessHeader is what the relay writes into a new sender_access.
const senderAccessHeader = "# Sender domains blocked by relaykeeper's enforcer (Postfix access(5) format).\n" +
	"# Each entry follows a comment saying when and why. Edit freely.\n"

// TestEnforceBlockDomain: Gmail's "very low reputation of the sending
// domain" for x@bad.example appends "bad.example REJECT", after a comment
// with the time and the reason, to SPOOL/.enforce/sender_access; the
// domain's next sender is refused at MAIL FROM; the same refusal for a
// gmail.com sender blocks nothing and is reported.
func TestEnforceBlockDomain(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	gmail.answer("dom2@gmail.test", stData, gmailDomainReputation)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{})
	path := enforceFile(r, "sender_access")
	if data, err := os.ReadFile(path); err != nil || string(data) != senderAccessHeader {
		t.Fatalf("sender_access at start: %q, %v; want the header only", data, err)
	}

	start := time.Now().UTC().Truncate(time.Second)
	tx, err := sendFrom(r.addr(), "127.0.0.1", "x@bad.example", []string{"dom@gmail.test"}, gmailMessage("x@bad.example", "bad domain"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	block := r.waitEvent("block", 10*time.Second, nil)
	sent := gmail.lastSent("dom@gmail.test")
	if block.Get("domain") != "bad.example" || block.Get("id") != id || block.Get("rule") != "gmail-domain-reputation" ||
		block.Get("added") != "true" || block.Get("reply") != joinedReply(sent) {
		t.Errorf("block line %v; want domain=bad.example id=%s rule=gmail-domain-reputation added=true and Gmail's reply", block.Fields, id)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`^# (\S+) relaykeeper: ` + regexp.QuoteMeta("gmail-domain-reputation: "+reasonText(joinedReply(sent))) + "\nbad\\.example REJECT\n$")
	added, ok := strings.CutPrefix(string(data), senderAccessHeader)
	m := entry.FindStringSubmatch(added)
	if !ok || m == nil {
		t.Fatalf("sender_access:\n%s\nwant the header, then a comment and the entry matching %q", data, entry)
	}
	if at, err := time.Parse(time.RFC3339, m[1]); err != nil || at.Before(start) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("sender_access comment time %q (%v); want the time of the refusal", m[1], err)
	}
	// The block is logged during the attempt, before the message is
	// released in its new state.
	waitFor(5*time.Second, func() bool { return msgState(r.spool, id) == "failed" })
	if s := msgState(r.spool, id); s != "failed" {
		t.Errorf("the refused message is %s; want failed (bounced)", s)
	}

	// The domain's next message is refused at MAIL FROM.
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "554 5.7.1 <y@bad.example>: Sender address rejected: Access denied", "MAIL FROM:<y@bad.example>")
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<y@good.example>")
	mustCmd(t, c, "221", "QUIT")

	// A gmail.com sender is never blocked: the refusal is reported.
	tx, err = sendFrom(r.addr(), "127.0.0.1", "someone@gmail.com", []string{"dom2@gmail.test"}, gmailMessage("someone@gmail.com", "freemail"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	id2 := queuedID(t, tx.Final)
	rep := r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id2 })
	if rep.Get("rule") != "gmail-domain-reputation" || rep.Get("why") != "domain not blocked: the domain gmail.com is never blocked" || rep.Get("from") != "<someone@gmail.com>" {
		t.Errorf("report line %v; want rule=gmail-domain-reputation why=\"domain not blocked: the domain gmail.com is never blocked\" from=<someone@gmail.com>", rep.Fields)
	}
	if bs := r.events("block"); len(bs) != 1 {
		t.Errorf("%d block lines; want 1 (bad.example only): %v", len(bs), fieldsOf(bs))
	}
	if after, _ := os.ReadFile(path); string(after) != string(data) {
		t.Errorf("sender_access changed by the gmail.com refusal:\n%s", after)
	}
	c = mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<other@gmail.com>")
}
