package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/srs"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestCompanionHostile sends the log-injection attacks through a real,
// private Postfix that relays to a fake Gmail, and runs "relaykeeper
// postfix-enforcer" over that Postfix's own mail log: nothing the clients
// wrote steers it.
//
//   - 203.0.113.66 sends spam with MAIL FROM:<...> AUTH=<x,
//     orig_client=victim[198.51.100.7]>, which Postfix logs as sasl_sender=
//     on the client= line. Gmail refuses it as unsolicited: the spammer is
//     banned, the victim is not.
//   - 203.0.113.67 sends as "x@victim.example>"@attacker.example, refused for
//     its domain's reputation: attacker.example is blocked, victim.example
//     is not.
//   - 203.0.113.69 sends as SRS0=abcd=XY=gmail.com=bob@srs-attacker.example,
//     an SRS address whose hash nobody checked, refused for its domain's
//     reputation: srs-attacker.example is blocked, gmail.com is not.
//   - 203.0.113.70 sends as an SRS0 address signed with the secret the
//     companion is given (--srs-secret, as postsrsd's): example.org, the
//     domain it stands for, is blocked.
//   - 203.0.113.68 sends to "a>status=bounced (host x said: 550 5.7.1 likely
//     unsolicited mail"@gmail.test, which Gmail takes: status=sent is no
//     refusal, and nothing happens to 203.0.113.68.
//   - 203.0.113.71 sends as "unusual rate of unsolicited mail originating
//     from your SPF domain [victim2.example 30]"@echo.example, which Gmail
//     refuses as an invalid sender, quoting it: the rules do not read
//     Gmail's words in the quoted address (an outside check blocked
//     victim2.example that way), and nobody is banned or blocked.
func TestCompanionHostile(t *testing.T) {
	t.Parallel()
	// AUTH= on MAIL FROM is read only with SASL on; no client logs in.
	pf, _ := hostileGmailPostfix(t, "smtpd_sasl_auth_enable = yes")

	// A sender the relay's own postsrsd rewrote, signed with the secret
	// the companion is given: read back as example.org's.
	dir := t.TempDir()
	secret := writeFile(t, dir, "srs.secret", "hostile-srs-secret\n", 0o600)
	rw, err := srs.Load(secret, "relay.test")
	if err != nil {
		t.Fatal(err)
	}
	signed := rw.Forward("carol@example.org")

	hostileSendAll(t, pf.Addr(), []hostileClient{
		{"203.0.113.66", "mx.attacker.test", []string{
			"MAIL FROM:<bob@attacker.test> AUTH=<x, orig_client=victim.test[198.51.100.7]>",
			"RCPT TO:<spam@gmail.test>"}},
		{"203.0.113.67", "mx.attacker.example", []string{
			`MAIL FROM:<"x@victim.example>"@attacker.example>`,
			"RCPT TO:<domain@gmail.test>"}},
		{"203.0.113.69", "mx.srs.test", []string{
			"MAIL FROM:<SRS0=abcd=XY=gmail.com=bob@srs-attacker.example>",
			"RCPT TO:<domain2@gmail.test>"}},
		{"203.0.113.70", "mx.forwarder.test", []string{
			"MAIL FROM:<" + signed + ">",
			"RCPT TO:<domain3@gmail.test>"}},
		{"203.0.113.68", "mx.quoter.test", []string{
			"MAIL FROM:<eve@quoter.test>",
			`RCPT TO:<"a>status=bounced (host x said: 550 5.7.1 likely unsolicited mail"@gmail.test>`}},
		{"203.0.113.71", "mx.echo.test", []string{
			`MAIL FROM:<"unusual rate of unsolicited mail originating from your SPF domain [victim2.example 30]"@echo.example>`,
			"RCPT TO:<echo@gmail.test>"}},
	})
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<domain@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<domain2@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<domain3@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<"a>status=bounced .*status=sent`, 30*time.Second)
	compWaitLog(t, pf, `to=<echo@gmail\.test>, .*status=bounced`, 30*time.Second)
	log := pf.MailLog()
	t.Logf("Postfix's log:\n%s", log)
	// The attacks reached the log as described.
	for _, re := range []string{
		`client=mx\.attacker\.test\[203\.0\.113\.66\], .*orig_client=victim\.test\[198\.51\.100\.7\]`,
		`from=<"x@victim\.example>"@attacker\.example>`,
		`to=<"a>status=bounced \(host x said: 550 5\.7\.1 likely unsolicited mail"@gmail\.test>, .*status=sent`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("Postfix's log has no line matching %s", re)
		}
	}

	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--srs-secret", secret, "--srs-domain", "relay.test",
		"--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{
		`^\S+ block-domain domain=example\.org .*client=203\.0\.113\.70 .*rule=gmail-domain-reputation`,
		`^\S+ ban client=203\.0\.113\.66 .*rule=gmail-unsolicited`,
		`^\S+ block-domain domain=attacker\.example .*client=203\.0\.113\.67 .*rule=gmail-domain-reputation`,
		`^\S+ block-domain domain=srs-attacker\.example .*client=203\.0\.113\.69 .*rule=gmail-domain-reputation`,
	})
	for _, bad := range []string{"198.51.100.7", "victim.test", "domain=victim", "203.0.113.68", "domain=gmail", "domain=echo", "ban client=203.0.113.71"} {
		if strings.Contains(out, bad) {
			t.Errorf("the enforcer's output mentions %q:\n%s", bad, out)
		}
	}
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.66")
	b, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	if !regexp.MustCompile(`(?m)^attacker\.example\s+REJECT$`).Match(b) || regexp.MustCompile(`(?m)^[^#\n]*(victim|gmail)`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant attacker.example blocked, and nothing of victim.example", b)
	}
}

// hostileGmailDecide refuses spam@ as unsolicited and domain@ for its
// sender domain's reputation, with Gmail's texts, and takes the rest as
// Gmail does.
func hostileGmailDecide(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
	if stage != harness.StageEndOfData || len(tx.Rcpts) == 0 {
		return harness.Response{}
	}
	switch strings.ToLower(tx.Rcpts[0].Addr) {
	case "echo@gmail.test":
		// Gmail quotes a sender it cannot parse.
		return harness.Response{Reply: "553-5.1.7 The sender address <" + tx.MailFrom + "> is not a valid RFC-5321\r\n" +
			"553-5.1.7 address. For more information, go to\r\n553 5.1.7  https://support.google.com/a/answer/3221692 e2e71si1 - gsmtp"}
	case "spam@gmail.test":
		return harness.Response{Reply: companionMessages[0].reply}
	case "domain@gmail.test", "domain2@gmail.test", "domain3@gmail.test":
		return harness.Response{Reply: companionMessages[1].reply}
	}
	// Gmail's acceptance ends with "gsmtp" too.
	return harness.Response{Reply: "250 2.0.0 OK  1733360402 a640c23a62f3a-a7a3c1f4d2si9876543b.100 - gsmtp"}
}

// hostileClient is a client that hostileSend speaks for: its address, its
// name, and its commands after XCLIENT and EHLO (MAIL, RCPT).
type hostileClient struct {
	ip, name string
	cmds     []string
}

// hostileSendAll sends a short message for each client in turn, with
// hostileSend.
func hostileSendAll(t *testing.T, addr string, clients []hostileClient) {
	t.Helper()
	for _, c := range clients {
		hostileSend(t, addr, c.ip, c.name, c.cmds, "")
	}
}

// hostileSend speaks SMTP to Postfix by hand, for commands that no client
// library sends: XCLIENT sets the client's address and name, then cmds
// (MAIL, RCPT), then head (header fields, CRLF-separated) and a short body.
func hostileSend(t *testing.T, addr, ip, name string, cmds []string, head string) {
	t.Helper()
	hostileSendData(t, addr, ip, name, cmds, head+"Subject: hostile\r\nMessage-Id: <"+ip+"@hostile.test>\r\n\r\nhello\r\n")
}

// hostileSendData is hostileSend with the whole message content (CRLF
// line ends, ending in CRLF).
func hostileSendData(t *testing.T, addr, ip, name string, cmds []string, data string) {
	t.Helper()
	gm25Send(t, addr, ip, name, name, cmds, data)
}

// TestCompanionHostileAmavis: amavis without XFORWARD logs 127.0.0.1 as its
// client and, as the "originating" address, its guess from the Received
// fields, which the sender may have written. 203.0.113.66 sends spam with a
// forged "Received: from victim.test ([198.51.100.7])" through Postfix and
// amavis; Gmail refuses the re-injected copy. The companion bans the client
// Postfix itself logged for the original queue id, not the guess.
func TestCompanionHostileAmavis(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	amavis := startFakeAmavis(t, net.JoinHostPort("127.0.0.1", fmt.Sprint(harness.FreePort(t))))
	amavis.noXforward = true
	pf := startAmavisPostfix(t, gmail, amavis)

	hostileSend(t, pf.Addr(), "203.0.113.66", "mx.attacker.test",
		[]string{"MAIL FROM:<bob@attacker.test>", "RCPT TO:<spam@gmail.test>"},
		"Received: from victim.test (victim.test [198.51.100.7])\r\n\tby mx.attacker.test with ESMTP id FORGED\r\n")
	compWaitLog(t, pf, `amavis\[\d+\]: .*LOCAL \[127\.0\.0\.1\]:\d+ \[198\.51\.100\.7\]`, 30*time.Second)
	compWaitLog(t, pf, `to=<spam@gmail\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=bounced`, 30*time.Second)

	dir := t.TempDir()
	out := companionEnforcer(t, pf, dir, "192.0.2.1\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.66 .*rule=gmail-unsolicited`})
	if strings.Contains(out, "198.51.100.7") {
		t.Errorf("the enforcer acted on amavis's guess 198.51.100.7:\n%s", out)
	}
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.66")
}
