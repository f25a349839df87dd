package e2e

import (
	"fmt"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRevPFE3CanonicalRegexpTargetNeverBlocked: the owner's domain that a
// regexp canonical table maps into ("/^(.*)@bad\.example$/ ${1}@owner.example",
// the common way to map a whole domain keeping the local part) is never
// blocked, as a hash table's is; nor is one a table maps into only after
// it was changed while the relay runs (tables are re-read when they
// change).
func TestRevPFE3CanonicalRegexpTargetNeverBlocked(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	gmail.answer("dom2@gmail.test", stData, gmailDomainReputation)
	dir := t.TempDir()
	canon := writeFile(t, dir, "sender_canonical", "/^(.*)@bad\\.example$/  ${1}@owner.example\n", 0o644)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: fmt.Sprintf("[enforce]\nban_delay = \"0s\"\n[rewrite]\nsender_canonical_maps = [\"regexp:%s\"]\n", canon)})
	tx, err := sendFrom(r.addr(), "127.0.0.1", "x@bad.example", []string{"dom@gmail.test"}, gmailMessage("x@bad.example", "mapped regexp"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if rep := r.waitEvent("report", 10*time.Second, nil); rep == nil || !strings.Contains(fmt.Sprint(rep.Fields), "owner.example") {
		t.Errorf("report line %v; want it to name owner.example", rep)
	}
	if data, _ := os.ReadFile(enforceFile(r, "sender_access")); strings.Contains(string(data), "owner.example") {
		t.Errorf("the owner's own (mapped-into) domain was blocked:\n%s", data)
	}
	// The same through a proxy.
	px := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, config: fmt.Sprintf("[enforce]\nban_delay = \"0s\"\n[rewrite]\nsender_canonical_maps = [\"regexp:%s\"]\n", canon)})
	if _, err := sendFrom(px.addr(), "127.0.0.1", "x@bad.example", []string{"dom@gmail.test"}, gmailMessage("x@bad.example", "mapped proxy")); err != nil {
		t.Fatal(err)
	}
	if rep := px.waitEvent("report", 10*time.Second, nil); rep == nil || !strings.Contains(fmt.Sprint(rep.Fields), "owner.example") {
		t.Errorf("proxy: report line %v; want it to name owner.example", rep)
	}
	if data, _ := os.ReadFile(enforceFile(px, "sender_access")); strings.Contains(string(data), "owner.example") {
		t.Errorf("proxy: the owner's own (mapped-into) domain was blocked:\n%s", data)
	}

	// The table now maps into a second domain of the owner's.
	time.Sleep(1100 * time.Millisecond) // a new mtime
	writeFile(t, dir, "sender_canonical", "/^(.*)@bad\\.example$/  ${1}@owner.example\n/^(.*)@worse\\.example$/  ${1}@owner2.example\n", 0o644)
	// Probes that Gmail takes, until the changed table is in force.
	mapped := false
	for i := 0; i < 20 && !mapped; i++ {
		tx, err := sendFrom(r.addr(), "127.0.0.2", "y@worse.example", []string{"probe@gmail.test"}, gmailMessage("y@worse.example", fmt.Sprintf("probe %d", i)))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
		waitFor(10*time.Second, func() bool {
			return len(gmail.txs(func(tx hTx) bool { return len(tx.Rcpts) > 0 && tx.Rcpts[0].Addr == "probe@gmail.test" })) > i
		})
		mapped = len(gmail.txs(func(tx hTx) bool { return tx.MailFrom == "y@owner2.example" })) > 0
		if !mapped {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if !mapped {
		t.Fatal("the changed table was never used")
	}
	tx, err = sendFrom(r.addr(), "127.0.0.2", "y@worse.example", []string{"dom2@gmail.test"}, gmailMessage("y@worse.example", "mapped later"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if rep := r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return strings.Contains(fmt.Sprint(e.Fields), "owner2.example") }); rep == nil {
		t.Error("no report line naming owner2.example")
	}
	time.Sleep(time.Second)
	if data, _ := os.ReadFile(enforceFile(r, "sender_access")); strings.Contains(string(data), "owner2.example") {
		t.Errorf("the owner's domain that the changed table maps into was blocked:\n%s", data)
	}
}

// TestRevPFE3CompanionEchoedSaid: a spammer's sender holds "] said: " and
// a whole Gmail reply naming victim.example; Gmail quotes the sender in
// its 553 5.1.7 refusal, and Postfix logs that. postfix-enforcer read the
// forged reply as Gmail's and blocked victim.example.
func TestRevPFE3CompanionEchoedSaid(t *testing.T) {
	t.Parallel()
	pf, _ := hostileGmailPostfix(t)
	sender := `"a] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [victim.example 30]. rate limited"@attacker.example`
	hostileSend(t, pf.Addr(), "203.0.113.81", "mx.attacker.example", []string{"MAIL FROM:<" + sender + ">", "RCPT TO:<echo@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<echo@gmail\.test>, .*status=bounced`, 30*time.Second)
	out := victimNotBlocked(t, pf)
	if !strings.Contains(out, "rule=gmail-invalid-sender-address") {
		t.Errorf("the refusal was not read as Gmail's 553 5.1.7:\n%s", out)
	}
}

// TestRevPFE3CompanionCanonicalTargetNeverBlocked: Postfix's
// sender_canonical_maps maps the clients' senders into the owner's own
// domain, and qmgr logs the mapped sender. A Gmail domain-reputation
// refusal of such a message named owner.example, and postfix-enforcer
// blocked it: every client mapped into it was then refused by Postfix.
// The relay never blocks the domains its canonical maps map into
// (0bf85b8); postfix-enforcer now reads Postfix's (postconf, MAIL_CONFIG
// as Postfix's own commands do).
func TestRevPFE3CompanionCanonicalTargetNeverBlocked(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	dir := t.TempDir()
	canon := writeFile(t, dir, "sender_canonical", "/^(.*)@bad\\.example$/  ${1}@owner.example\n", 0o644)
	pf := companionPostfix(t, gmail.Addr(), "sender_canonical_maps = regexp:"+canon)
	hostileSend(t, pf.Addr(), "203.0.113.82", "mx.bad.example", []string{"MAIL FROM:<x@bad.example>", "RCPT TO:<dom@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<dom@gmail\.test>, .*status=bounced`, 30*time.Second)
	if !strings.Contains(pf.MailLog(), "from=<x@owner.example>") {
		t.Fatalf("Postfix did not map the sender:\n%s", pf.MailLog())
	}
	access := filepath.Join(dir, "sender_access")
	out := mailConfigEnforcer(t, pf, dir, access)
	if b, _ := os.ReadFile(access); strings.Contains(string(b), "owner.example") || strings.Contains(out, "domain=owner.example") {
		t.Errorf("the owner's own (mapped-into) domain was blocked:\n%s\nsender_access:\n%s", out, b)
	}
	if !regexp.MustCompile(`(?m)^\S+ report .*client=203\.0\.113\.82 .*why="the domain owner\.example is never blocked"`).MatchString(out) {
		t.Errorf("want a report naming owner.example:\n%s", out)
	}
}

// TestRevPFE3RelayEchoedSaid: the relay, given Gmail's 553 5.1.7 quoting a
// sender that holds a whole Gmail reply of its own ("] said: 421-4.7.28
// ... [victim.example 30]"), acts on Gmail's reply, never the sender's.
func TestRevPFE3RelayEchoedSaid(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	sender := `"a] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [victim.example 30]. rate limited"@attacker.example`
	gmail.answer(sender, stMail, gmailReply("553", "5.1.7", "The sender address <{sender}> is not a valid RFC-5321 address. For more information, go to https://support.google.com/a/answer/3221692"))
	for _, proxy := range []bool{false, true} {
		r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy})
		if _, err := sendFrom(r.addr(), "127.0.0.3", sender, []string{"echo@gmail.test"}, gmailMessage("x@attacker.example", "echo")); err != nil {
			t.Fatal(err)
		}
		e := r.waitEvent("", 10*time.Second, func(e *maillog.Entry) bool {
			return e.Get("client") == "127.0.0.3" && (e.Event == "encapsulate" || e.Event == "report" || e.Event == "block")
		})
		if e.Event == "block" || e.Get("rule") != "gmail-invalid-sender-address" {
			t.Errorf("proxy=%v: %s %v; want Gmail's 553 5.1.7 acted on", proxy, e.Event, e.Fields)
		}
		if data, _ := os.ReadFile(enforceFile(r, "sender_access")); strings.Contains(string(data), "victim") {
			t.Errorf("proxy=%v: victim.example blocked:\n%s", proxy, data)
		}
	}
}
