package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/srs"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview11CompanionSteering sends a second round of log-injection
// attacks, beyond those of TestCompanionHostile, through a real private
// Postfix and runs "relaykeeper postfix-enforcer" over its log: the
// spammers' own refusals still act, and nobody else is banned or blocked.
func TestReview11CompanionSteering(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: review11GmailDecide})
	dir := t.TempDir()
	secret := writeFile(t, dir, "srs.secret", "review11-secret\n", 0o600)
	// Mail for alias.test is rewritten to spam@gmail.test (virtual
	// aliasing), so Postfix logs the original recipient as orig_to=.
	aliases := writeFile(t, dir, "virtual.regexp", "/@alias\\.test$/ spam@gmail.test\n", 0o644)
	pf := companionPostfix(t, gmail.Addr(),
		"virtual_alias_domains = alias.test",
		"virtual_alias_maps = regexp:"+aliases,
		"smtpd_sasl_auth_enable = yes")

	// An SRS address of the relay's own domain whose hash verifies but
	// whose day is 40 days old: expired, never read as victim.example.
	old, err := srs.New("relay.test", []string{"review11-secret"})
	if err != nil {
		t.Fatal(err)
	}
	old.Clock = func() time.Time { return time.Now().Add(-40 * 24 * time.Hour) }
	expired := old.Forward("bob@victim.example")
	// An SRS1 address that names victim.example but was never signed.
	srs1 := "SRS1=abcd=victim.example==efgh=XY=victim.example=bob@relay.test"

	fake := `x, relay=mx.google.test[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, status=bounced (host mx.google.test[127.0.0.1] said: 550 5.7.1 likely unsolicited mail (in reply to end of DATA command))`
	hostileSendAll(t, pf.Addr(), []hostileClient{
		// AUTH= with a whole XFORWARD tail of its own; the spam is
		// refused: 203.0.113.71 is banned, nobody else.
		{"203.0.113.71", "mx.attacker.test", []string{
			"MAIL FROM:<bob@attacker.test> AUTH=<x, orig_queue_id=ABCDE12345, orig_client=victim.test[198.51.100.7]>",
			"RCPT TO:<spam@gmail.test>"}},
		// A whole refused delivery's fields inside a quoted recipient
		// that Gmail takes: nothing happens.
		{"203.0.113.72", "mx.quoter.test", []string{
			"MAIL FROM:<eve@quoter.test>",
			`RCPT TO:<"` + fake + `"@gmail.test>`}},
		// The same fields inside a quoted sender, refused for its
		// domain: attacker.example is blocked, victim.example is not.
		{"203.0.113.73", "mx.attacker.example", []string{
			`MAIL FROM:<"` + strings.ReplaceAll(fake, "x, ", "x@victim.example, ") + `"@attacker.example>`,
			"RCPT TO:<domain@gmail.test>"}},
		// An SRS0 sender with a wrong hash, an expired one and an
		// unsigned SRS1: relay.test is the relay's own domain, never
		// blocked; victim.example is never read out of them.
		{"203.0.113.74", "mx.srs.test", []string{
			"MAIL FROM:<SRS0=abcd=XY=victim.example=bob@relay.test>",
			"RCPT TO:<domain1@gmail.test>"}},
		{"203.0.113.74", "mx.srs.test", []string{
			"MAIL FROM:<" + expired + ">",
			"RCPT TO:<domain2@gmail.test>"}},
		{"203.0.113.74", "mx.srs.test", []string{
			"MAIL FROM:<" + srs1 + ">",
			"RCPT TO:<domain3@gmail.test>"}},
		// orig_to= (the recipient before aliasing) holding a relay= of
		// its own: the spam is still refused, and 203.0.113.75 banned.
		{"203.0.113.75", "mx.alias.test", []string{
			"MAIL FROM:<bob@alias-spammer.test>",
			`RCPT TO:<"x, relay=none, delay=0"@alias.test>`}},
	})
	compWaitCount(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 2, 30*time.Second)
	compWaitCount(t, pf, `to=<domain\d?@gmail\.test>, .*status=bounced`, 4, 30*time.Second)
	compWaitLog(t, pf, `status=sent`, 30*time.Second)
	log := pf.MailLog()
	t.Logf("Postfix's log:\n%s", log)
	for _, re := range []string{
		`to=<spam@gmail\.test>, orig_to=<"x, relay=none, delay=0"@alias\.test>, relay=.*status=bounced`,
		`to=<"x, relay=mx\.google\.test.*"@gmail\.test>, relay=.*status=sent`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("Postfix's log has no line matching %s", re)
		}
	}

	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--srs-secret", secret, "--srs-domain", "relay.test",
		"--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{
		`^\S+ ban client=203\.0\.113\.71 .*rule=gmail-unsolicited`,
		`^\S+ block-domain domain=attacker\.example .*client=203\.0\.113\.73 `,
		`^\S+ ban client=203\.0\.113\.75 .*rule=gmail-unsolicited`,
	})
	for _, bad := range []string{"198.51.100.7", "domain=victim", "203.0.113.72", "domain=gmail", "domain=relay.test"} {
		if strings.Contains(out, bad) {
			t.Errorf("the enforcer's output mentions %q:\n%s", bad, out)
		}
	}
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.71", "203.0.113.75")
	b, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	if regexp.MustCompile(`(?m)^[^#\n]*(victim|gmail|relay\.test)`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant nothing of victim.example, gmail or relay.test", b)
	}
}

// TestReview11CompanionForeignUpstream: a client that may relay sends, as
// victim.example, to a domain whose mail server it runs; that server
// answers with Gmail's words, down to the "gsmtp" marker. The companion
// must not block victim.example on a stranger's say-so: only Gmail's
// refusals act.
func TestReview11CompanionForeignUpstream(t *testing.T) {
	t.Parallel()
	evil := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.attacker.test", Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if stage != harness.StageEndOfData {
			return harness.Response{}
		}
		if strings.HasPrefix(tx.Rcpts[0].Addr, "spf") {
			return harness.Response{Reply: "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n421-4.7.28 from your SPF domain [victim2.example 30]. To protect our users from\r\n421 4.7.28 spam, mail sent from your SPF domain has been temporarily rate limited. x.1 - gsmtp"}
		}
		return harness.Response{Reply: companionMessages[1].reply}
	}})
	dir := t.TempDir()
	transport := writeFile(t, dir, "transport", "attacker.test smtp:"+harness.RelayhostFor(evil.Addr())+"\n", 0o644)
	pf, _ := hostileGmailPostfix(t, "relay_domains = gmail.test attacker.test", "transport_maps = texthash:"+transport)
	hostileSend(t, pf.Addr(), "203.0.113.77", "mx.attacker.test", []string{"MAIL FROM:<bob@victim.example>", "RCPT TO:<x@attacker.test>"}, "")
	hostileSend(t, pf.Addr(), "203.0.113.77", "mx.other.test", []string{"MAIL FROM:<bob@attacker.test>", "RCPT TO:<spf@attacker.test>"}, "")
	compWaitLog(t, pf, `to=<x@attacker\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<spf@attacker\.test>, .*status=deferred`, 30*time.Second)
	companionEnforcer(t, pf, dir, "127.0.0.0/8\n")
	b, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	if regexp.MustCompile(`(?m)^[^#\n]*victim`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant nothing of victim.example or victim2.example", b)
	}
}

// review11GmailDecide refuses spam@ as unsolicited and domain*@ for the
// sender domain's reputation, and takes the rest.
func review11GmailDecide(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
	if stage != harness.StageEndOfData || len(tx.Rcpts) == 0 {
		return harness.Response{}
	}
	if rcpt := strings.ToLower(tx.Rcpts[0].Addr); strings.HasPrefix(rcpt, "domain") && strings.HasSuffix(rcpt, "@gmail.test") {
		return harness.Response{Reply: companionMessages[1].reply}
	}
	return hostileGmailDecide(stage, tx, arg)
}

// TestReview11CompanionSASLAlert: the upstream refuses Postfix's own login
// (a real Postfix, SASL over TLS, to relaykeeper as a smarthost that takes
// another password). Postfix logs "SASL authentication failed; server ...
// said: 535 5.7.8 ..."; the companion tells the administrator once, and
// sanctions nobody.
func TestReview11CompanionSASLAlert(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, _ := authUpstream(t, sink)
	dir := t.TempDir()
	passwd := writeFile(t, dir, "sasl_passwd", harness.RelayhostFor(up.addr())+" alice@rk.test:wrong-password\n", 0o600)
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost:            harness.RelayhostFor(up.addr()),
		SMTPTLSSecurityLevel: "encrypt",
		MainCF: []string{
			"smtp_sasl_auth_enable = yes",
			"smtp_sasl_password_maps = texthash:" + passwd,
			"smtp_sasl_security_options = noanonymous",
			"smtp_sasl_tls_security_options = noanonymous",
		},
	})
	for _, to := range []string{"one@gmail.test", "two@gmail.test"} {
		hostileSend(t, pf.Addr(), "203.0.113.80", "mx.client.test", []string{"MAIL FROM:<bob@client.test>", "RCPT TO:<" + to + ">"}, "")
	}
	compWaitCount(t, pf, `status=deferred \(SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535`, 2, 30*time.Second)

	out := companionEnforcer(t, pf, dir, "192.0.2.1\n", "--upstream", `^127\.0\.0\.1\[`)
	alerts := regexp.MustCompile(`(?m)^\S+ alert .*rule=gmail-auth`).FindAllString(out, -1)
	if len(alerts) != 1 {
		t.Errorf("%d alert lines for the refused login; want one", len(alerts))
	}
	if regexp.MustCompile(`(?m)^\S+ (ban|block-domain) `).MatchString(out) {
		t.Errorf("the relay's own login failure sanctioned a client:\n%s", out)
	}
	compWantBans(t, filepath.Join(dir, "bans.log"))
}
