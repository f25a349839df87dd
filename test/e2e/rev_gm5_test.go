package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevGM5RelayGooglePage: Gmail's replies that gmail-replies.md leaves
// out (internal/enforce/testdata/gmail-replies-page.txt: older wordings,
// a disabled recipient, the relay's TLS, login, address and Workspace SMTP
// relay set-up), given by a fake Gmail to the relay (store and proxy,
// welcomelisted or not) as TestRevPFE3RelayEveryReply gives the
// document's. Each was reported as a reply no rule knows; the relay's own
// faults raised no alert.
func TestRevGM5RelayGooglePage(t *testing.T) {
	t.Parallel()
	relayEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}

// TestRevGM5CompanionGooglePage: the same replies through a real Postfix
// and postfix-enforcer, as TestRevPFE3CompanionEveryReply.
func TestRevGM5CompanionGooglePage(t *testing.T) {
	t.Parallel()
	companionEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}

// TestRevGM5GreetingRateLimitPaces: Gmail refusing the relay at its
// greeting with "an unusual rate of unsolicited mail originating from your
// IP address (IP Netblock) ... temporarily rate limited" has read no
// message, so nobody is banned (f631325); but the relay went on as if
// nothing had been said: no pace line, and every queued message opened a
// session of its own at each retry (12 sessions in 8 seconds for six
// messages), the behaviour that keeps an address rate limited. The
// destination is paced now, as for Gmail's "unusual rate of email": one
// pace line, no session within the suspension, the mail kept, nobody
// banned.
func TestRevGM5GreetingRateLimitPaces(t *testing.T) {
	t.Parallel()
	for name, greeting := range map[string]string{"ip-rate": gmailIPRateLimited, "netblock": gmailNetblock} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
				if st == harness.StageConnect {
					return harness.Response{Fault: harness.Close421, Reply: strings.ReplaceAll(greeting, "{id}", "g1si1")}
				}
				return harness.Response{}
			}})
			cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\npace_suspend = \"30s\"\n"
			r := startEnforcer(t, fake.Addr(), enforceOpts{config: cfg})
			var ids []string
			for i := range 4 {
				from := fmt.Sprintf("a%d@gm5.example", i)
				tx, err := sendFrom(r.addr(), fmt.Sprintf("127.0.3.%d", 10+i), from, []string{"b@gmail.test"}, gmailMessage(from, fmt.Sprint("greeting ", i)))
				if err != nil || tx.Final.code() != 250 {
					t.Fatalf("send %d: %v %+v", i, err, tx)
				}
				ids = append(ids, queuedID(t, tx.Final))
			}
			pace := r.waitEvent("pace", 10*time.Second, nil)
			if pace == nil || pace.Get("destination") != fake.Addr() {
				t.Fatalf("pace line %v; want one for %s", pace, fake.Addr())
			}
			n := fake.Connections()
			time.Sleep(4 * time.Second) // four backoffs' worth
			if m := fake.Connections(); m != n {
				t.Errorf("%d sessions after the rate limit at the greeting; want none while paced", m-n)
			}
			for _, e := range r.events("ban") {
				t.Errorf("a refusal at the greeting banned a client: %v", e.Fields)
			}
			for _, id := range ids {
				if s := msgState(r.spool, id); s != "ready" {
					t.Errorf("message %s is %s; want it kept queued", id, s)
				}
			}
		})
	}
}

// TestRevGM5CompanionInternalFormSender: Postfix before 3.5, or with
// info_log_address_format = internal, logs a sender unquoted: the sender
// `"x@victim.example>, size=1"@attacker.example` becomes qmgr's
// `from=<x@victim.example>, size=1@attacker.example>, size=N, nrcpt=1
// (queue active)`. postfix-enforcer read victim.example as the sender's
// domain, and Gmail's "very low reputation of the sending domain" for the
// spammer's message blocked victim.example (docs/postfix-enforcer.md says
// such a line is not read). qmgr's line is now read only in the shapes
// qmgr writes it.
func TestRevGM5CompanionInternalFormSender(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("dom@gmail.test", stData, gmailDomainReputation)
	pf := companionPostfix(t, gmail.Addr(), "info_log_address_format = internal")
	sender := `"x@victim.example>, size=1"@attacker.example`
	hostileSend(t, pf.Addr(), "203.0.113.83", "mx.attacker.example", []string{"MAIL FROM:<" + sender + ">", "RCPT TO:<dom@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<dom@gmail\.test>, .*status=bounced`, 30*time.Second)
	if !strings.Contains(pf.MailLog(), "from=<x@victim.example>, size=1@attacker.example>") {
		t.Fatalf("Postfix did not log the sender in its internal form:\n%s", pf.MailLog())
	}
	victimNotBlocked(t, pf)
}

// victimNotBlocked runs postfix-enforcer --once over pf's log (loopback
// welcomelisted, the fake Gmail on 127.0.0.1 trusted), fails if it blocked
// victim.example, and returns its output.
func victimNotBlocked(t *testing.T, pf *harness.Postfix) string {
	t.Helper()
	dir := t.TempDir()
	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	if b, _ := os.ReadFile(filepath.Join(dir, "sender_access")); strings.Contains(string(b), "victim") || strings.Contains(out, "domain=victim") {
		t.Errorf("victim.example blocked for a spammer's mail:\n%s\nsender_access:\n%s", out, b)
	}
	return out
}

// TestRevGM5CompanionPostfixOwnDomainNeverBlocked: Postfix's own domain
// ($mydomain, $myorigin, $mydestination) was blocked in sender_access when
// a client's mail sent as one of its addresses had Gmail's "very low
// reputation of the sending domain": every user of the site was then
// refused at MAIL FROM. The relay never blocks its own domain;
// postfix-enforcer now never blocks Postfix's (postconf, MAIL_CONFIG) and
// reports instead. Another client's domain is still blocked.
func TestRevGM5CompanionPostfixOwnDomainNeverBlocked(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("own@gmail.test", stData, gmailDomainReputation)
	gmail.answer("other@gmail.test", stData, gmailDomainReputation)
	pf := companionPostfix(t, gmail.Addr(),
		"mydomain = owner.example", "myorigin = $mydomain", "mydestination = $myhostname, localhost, hosted.example")
	hostileSend(t, pf.Addr(), "203.0.113.84", "mx.one.example", []string{"MAIL FROM:<x@owner.example>", "RCPT TO:<own@gmail.test>"}, "")
	hostileSend(t, pf.Addr(), "203.0.113.85", "mx.two.example", []string{"MAIL FROM:<y@other.example>", "RCPT TO:<other@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<own@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<other@gmail\.test>, .*status=bounced`, 30*time.Second)
	dir := t.TempDir()
	access := filepath.Join(dir, "sender_access")
	out := mailConfigEnforcer(t, pf, dir, access)
	b, _ := os.ReadFile(access)
	if strings.Contains(string(b), "owner.example") || strings.Contains(out, "domain=owner.example") {
		t.Errorf("Postfix's own domain was blocked:\n%s\nsender_access:\n%s", out, b)
	}
	if !regexp.MustCompile(`(?m)^\S+ report .*client=203\.0\.113\.84 .*why="the domain owner\.example is never blocked"`).MatchString(out) {
		t.Errorf("want a report naming owner.example:\n%s", out)
	}
	if !strings.Contains(string(b), "other.example") {
		t.Errorf("another client's domain was not blocked:\n%s\nsender_access:\n%s", out, b)
	}
}

// mailConfigEnforcer runs postfix-enforcer --once over pf's log with
// pf's MAIL_CONFIG (so that its postconf reads pf's main.cf), loopback
// welcomelisted and the fake Gmail on 127.0.0.1 trusted, and returns its
// output.
func mailConfigEnforcer(t *testing.T, pf *harness.Postfix, dir, access string) string {
	t.Helper()
	welcome := writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644)
	return enforcerOnce(t, []string{"MAIL_CONFIG=" + pf.ConfigDir()},
		append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access, welcome, filepath.Join(dir, "bans.log"), pf.Addr()),
			"--trusted-upstream", "127.0.0.1")...)
}
