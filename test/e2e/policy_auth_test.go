package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

const (
	authOK       = "235 2.7.0 Authentication successful"
	authFailed   = "535 5.7.8 Authentication failed"
	authThrottle = "454 4.7.0 Too many authentication failures; try again later"
	outsideRcpt  = "victim@elsewhere.example"
)

// startAuthRelay starts a relay that offers STARTTLS with a self-signed
// certificate and AUTH with the accounts in secrets, and whose
// configuration has cfg (TOML) after relay_domains = ["relay.example"].
// mynetworks is left alone, so only "server none" lines would be trusted:
// there are none, so every client must log in to relay.
func startAuthRelay(t *testing.T, secrets, cfg string, extra ...string) *relay {
	t.Helper()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	sec := writeFile(t, dir, "auth.secrets", secrets, 0o600)
	args := append([]string{"--server-tls", "--server-tls-certificate", pem, "--server-auth", sec}, extra...)
	return startPolicyRelay(t, "[policy]\nrelay_domains = [\"relay.example\"]\n"+cfg, args...)
}

const plainSecrets = "server plain alice alice+20pw\nserver plain bob bobpw\n"

// loginTLS connects from fromIP, starts TLS and logs in with AUTH PLAIN;
// the login must get want.
func loginTLS(t *testing.T, addr, fromIP, user, pass, want string) *smtpClient {
	t.Helper()
	c := mustDial(t, addr, fromIP)
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	if err := c.startTLS(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, want, "AUTH PLAIN %s", authPlain(user, pass))
	return c
}

// TestAuthSwaksSTARTTLS: swaks logs in over STARTTLS with PLAIN, LOGIN and
// CRAM-MD5 (the secrets file has plain passwords, so CRAM-MD5 is offered)
// and may then relay to a domain outside relay_domains; the accept line
// names the login. Without a login the same recipient is refused.
func TestAuthSwaksSTARTTLS(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
		out, code := harness.Swaks(t, "--server", r.addr(), "--tls", "--auth", mech, "--auth-user", "alice",
			"--auth-password", "alice pw", "--from", "alice@example.org", "--to", outsideRcpt,
			"--header", "Subject: auth "+mech, "--timeout", "10")
		m := swaksQueuedTLS.FindStringSubmatch(out)
		if code != 0 || m == nil || !strings.Contains(out, "<~  "+authOK) {
			t.Errorf("swaks --tls --auth %s: exit %d; want 0, %q and \"250 2.0.0 OK: queued as ID\"; output:\n%s", mech, code, authOK, out)
			continue
		}
		e := r.waitEvent("accept", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == m[1] })
		if e.Get("auth") != "alice" {
			t.Errorf("accept line after AUTH %s: auth=%q; want alice", mech, e.Get("auth"))
		}
		r.waitEvent("auth", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("mech") == mech && e.Get("id") == "alice" })
	}
	out, code := harness.Swaks(t, "--server", r.addr(), "--tls", "--from", "alice@example.org", "--to", outsideRcpt, "--timeout", "10")
	if want := "<~* 554 5.7.1 <" + outsideRcpt + ">: Relay access denied"; code == 0 || !strings.Contains(out, want) {
		t.Errorf("swaks --tls without AUTH: exit %d; want a failure with %q; output:\n%s", code, want, out)
	}
}

// TestAuthNotBeforeTLS: before STARTTLS, EHLO offers no AUTH and an AUTH
// command is refused; after it, AUTH is offered with every mechanism the
// plain-password file allows.
func TestAuthNotBeforeTLS(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	c := mustDial(t, r.addr(), "127.0.0.1")
	kw := ehloKeywords(t, c)
	if _, ok := kw["AUTH"]; ok {
		t.Errorf("EHLO before STARTTLS offers AUTH %q; want no AUTH", kw["AUTH"])
	}
	if _, ok := kw["STARTTLS"]; !ok {
		t.Errorf("EHLO before STARTTLS: %v; want STARTTLS offered", kw)
	}
	rep, err := c.cmd("AUTH PLAIN %s", authPlain("alice", "alice pw"))
	if err != nil || rep.String() != "523 5.7.10 TLS is required" {
		t.Errorf("AUTH PLAIN before STARTTLS = %q, %v; want \"523 5.7.10 TLS is required\"", rep, err)
	}
	// Not logged in: relaying is still refused.
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "554 5.7.1 <"+outsideRcpt+">: Relay access denied", "RCPT TO:<%s>", outsideRcpt)
	mustCmd(t, c, "250", "RSET")
	if err := c.startTLS(); err != nil {
		t.Fatal(err)
	}
	if kw := ehloKeywords(t, c); kw["AUTH"] != "PLAIN LOGIN CRAM-MD5" {
		t.Errorf("EHLO after STARTTLS offers AUTH %q; want \"PLAIN LOGIN CRAM-MD5\"", kw["AUTH"])
	}
}

// TestAuthFailures: a wrong password and an unknown user get the same
// "535 5.7.8", logged as stage=auth rejects with that reply, and the client
// stays unauthenticated.
func TestAuthFailures(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	c := loginTLS(t, r.addr(), "127.0.0.3", "alice", "wrong", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("mallory", "alice pw"))
	// LOGIN too: the user, then the password, each base64.
	mustCmd(t, c, "334 VXNlcm5hbWU6", "AUTH LOGIN")
	mustCmd(t, c, "334 UGFzc3dvcmQ6", "%s", "YWxpY2U=")
	mustCmd(t, c, authFailed, "%s", "d3Jvbmc=")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "554 5.7.1 <"+outsideRcpt+">: Relay access denied", "RCPT TO:<%s>", outsideRcpt)
	var es []*maillog.Entry
	waitFor(5*time.Second, func() bool { es = authRejects(r, "127.0.0.3"); return len(es) == 3 })
	if len(es) != 3 {
		t.Fatalf("stage=auth reject lines for 127.0.0.3: %v; want 3", fields(es))
	}
	for _, e := range es {
		if e.Get("reply") != authFailed {
			t.Errorf("auth reject line %v: reply=%q; want %q, what the client heard", e.Fields, e.Get("reply"), authFailed)
		}
	}
}

// authRejects returns the stage=auth reject lines of clients at ip.
func authRejects(r *relay, ip string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("reject") {
		if e.Get("stage") == "auth" && strings.HasPrefix(e.Get("client"), ip+":") {
			out = append(out, e)
		}
	}
	return out
}

// TestAuthThrottle: with failure_limit = 3, the fourth AUTH from an
// address that failed three times is refused with 454 4.7.0, even with
// the right password, also on a new connection; another address may still
// log in.
func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nfailure_limit = 3\nfailure_window = \"10m\"\n")
	c := loginTLS(t, r.addr(), "127.0.0.7", "alice", "wrong1", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("alice", "wrong2"))
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("nobody", "wrong3"))
	mustCmd(t, c, authThrottle, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	c.Close()
	c2 := loginTLS(t, r.addr(), "127.0.0.7", "alice", "alice pw", authThrottle)
	mustCmd(t, c2, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c2, "554 5.7.1 <"+outsideRcpt+">: Relay access denied", "RCPT TO:<%s>", outsideRcpt)
	c3 := loginTLS(t, r.addr(), "127.0.0.8", "alice", "alice pw", authOK)
	mustCmd(t, c3, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c3, "250", "RCPT TO:<%s>", outsideRcpt)

	var es []*maillog.Entry
	waitFor(5*time.Second, func() bool { es = authRejects(r, "127.0.0.7"); return len(es) == 5 })
	var got []string
	for _, e := range es {
		got = append(got, e.Get("reply"))
	}
	want := []string{authFailed, authFailed, authFailed, authThrottle, authThrottle}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stage=auth reject replies for 127.0.0.7 = %q; want %q (what the client heard)", got, want)
	}
}

// TestAuthSubmissionRole: a submission= listener needs STARTTLS before
// MAIL, then AUTH before MAIL; once both are done an outside recipient is
// accepted and the message spooled with the login.
func TestAuthSubmissionRole(t *testing.T) {
	t.Parallel()
	sub := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startAuthRelay(t, plainSecrets, "", "--interface", "submission="+sub)
	c := mustDial(t, sub, "127.0.0.1")
	kw := ehloKeywords(t, c)
	if _, ok := kw["STARTTLS"]; !ok {
		t.Errorf("submission EHLO %v; want STARTTLS offered", kw)
	}
	if _, ok := kw["AUTH"]; ok {
		t.Errorf("submission EHLO before TLS offers AUTH %q; want none", kw["AUTH"])
	}
	mustCmd(t, c, "530 5.7.0 Must issue a STARTTLS command first", "MAIL FROM:<alice@example.org>")
	if err := c.startTLS(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "530 5.7.0 Authentication required", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, authOK, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	tx, err := c.send("alice@example.org", []string{outsideRcpt}, message("submission"))
	if err != nil {
		t.Fatalf("send after STARTTLS and AUTH on submission: %v; %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	e := r.waitEvent("accept", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	if e.Get("auth") != "alice" {
		t.Errorf("accept line %v; want auth=alice", e.Fields)
	}
	for _, stage := range []string{"530 5.7.0 Must issue a STARTTLS command first", "530 5.7.0 Authentication required"} {
		found := false
		for _, e := range r.events("reject") {
			found = found || (e.Get("stage") == "mail" && e.Get("reply") == stage)
		}
		if !found {
			t.Errorf("no stage=mail reject line with reply=%q", stage)
		}
	}
}

// TestAuthSenderLoginMismatch: with sender_login_maps and
// reject_sender_login_mismatch, a logged-in client may use only the
// senders its login owns (bcrypt and plain accounts alike), and nobody may
// use an owned sender without logging in; Postfix's texts, at RCPT.
func TestAuthSenderLoginMismatch(t *testing.T) {
	t.Parallel()
	carol := bcryptLine(t, "carol", "carol pw")
	maps := writeFile(t, t.TempDir(), "sender_logins", "alice@example.org  alice\n@example.net  carol, alice-phone\n", 0o644)
	r := startAuthRelay(t, "server plain alice alice+20pw\n"+carol+"\n",
		fmt.Sprintf("[auth]\nsender_login_maps = %q\nreject_sender_login_mismatch = true\n", maps))

	c := loginTLS(t, r.addr(), "127.0.0.1", "carol", "carol pw", authOK)
	if kw := ehloKeywords(t, c); kw["AUTH"] != "" {
		// After AUTH, EHLO again: no AUTH offered to a logged-in client
		// is fine too; only CRAM-MD5 must never appear with bcrypt.
		if strings.Contains(kw["AUTH"], "CRAM-MD5") {
			t.Errorf("AUTH %q offered with a bcrypt account; want no CRAM-MD5", kw["AUTH"])
		}
	}
	check := func(c *smtpClient, login, sender, want string) {
		t.Helper()
		mustCmd(t, c, "250", "MAIL FROM:<%s>", sender)
		rep, err := c.cmd("RCPT TO:<%s>", outsideRcpt)
		if err != nil || !replyIs(rep, want) {
			t.Errorf("login %q, MAIL FROM:<%s>: RCPT = %q, %v; want %q", login, sender, rep, err, want)
		}
		mustCmd(t, c, "250", "RSET")
	}
	check(c, "carol", "anyone@example.net", "250")
	check(c, "carol", "alice@example.org", "553 5.7.1 <alice@example.org>: Sender address rejected: not owned by user carol")

	a := loginTLS(t, r.addr(), "127.0.0.1", "alice", "alice pw", authOK)
	check(a, "alice", "alice@example.org", "250")
	check(a, "alice", "alice+list@example.org", "250")
	check(a, "alice", "", "250")
	check(a, "alice", "bob@example.net", "553 5.7.1 <bob@example.net>: Sender address rejected: not owned by user alice")
	check(a, "alice", "nobody@unlisted.example", "553 5.7.1 <nobody@unlisted.example>: Sender address rejected: not owned by user alice")

	anon := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, anon, "250", "EHLO client.e2e.test")
	mustCmd(t, anon, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, anon, "553 5.7.1 <alice@example.org>: Sender address rejected: not logged in", "RCPT TO:<user@relay.example>")
	mustCmd(t, anon, "250", "RSET")
	mustCmd(t, anon, "250", "MAIL FROM:<stranger@unlisted.example>")
	mustCmd(t, anon, "250", "RCPT TO:<user@relay.example>")
	if es := rejectsTo(r, "rcpt", "user@relay.example"); len(es) != 1 || es[0].Get("rule") != "reject_sender_login_mismatch" {
		t.Errorf("reject lines to user@relay.example: %v; want one with rule=reject_sender_login_mismatch", fields(es))
	}
}

// swaksQueuedTLS is swaksQueued after STARTTLS, where swaks marks the
// server's lines "<~" instead of "<-".
var swaksQueuedTLS = regexp.MustCompile(`(?m)^<~  250 2\.0\.0 OK: queued as ([0-9A-F]{16})\r?$`)

var bcryptRE = regexp.MustCompile(`(?m)^server bcrypt carol \$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)

// bcryptLine makes a "server bcrypt USER HASH" line with relaykeeper passwd.
func bcryptLine(t *testing.T, user, pass string) string {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), "passwd", user)
	cmd.Stdin = strings.NewReader(pass + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("relaykeeper passwd %s: %v\n%s", user, err, out)
	}
	line := bcryptRE.FindString(string(out))
	if line == "" {
		t.Fatalf("relaykeeper passwd %s printed %q; want a \"server bcrypt %s $2a$...\" line", user, out, user)
	}
	return line
}

// TestAuthNotCarriedIntoTLS: with auth.allow_insecure a client may log in
// before STARTTLS, but that login must not outlive the switch to TLS (RFC
// 3207 section 4.2: the server discards what it learnt before): STARTTLS
// after a login is refused, and the session stays in plain text.
func TestAuthNotCarriedIntoTLS(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nallow_insecure = true\n")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "235", "AUTH PLAIN %s", authPlain("bob", "bobpw"))
	rep, err := c.cmd("STARTTLS")
	if err != nil || rep.code() != 503 {
		t.Fatalf("STARTTLS after AUTH = %q, %v; want a 503 refusal (the login would carry into TLS)", rep, err)
	}
	if _, ok := ehloKeywords(t, c)["STARTTLS"]; ok {
		t.Errorf("EHLO after AUTH offers STARTTLS; want it no longer offered")
	}
	// Still the same plain-text session, still logged in.
	mustCmd(t, c, "250", "MAIL FROM:<bob@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<%s>", outsideRcpt)
}

// TestSubmissionNeedsCertificate: a submission= listener requires
// STARTTLS (RFC 8314, docs/policy.md), so one without a certificate is an
// error at start-up naming --interface, not a port that takes mail in
// plain text.
func TestSubmissionNeedsCertificate(t *testing.T) {
	t.Parallel()
	sub := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, out, code := runBinary(t, harness.Binary(t), "", "--as-server", "--interface", "submission="+sub, "--spool-dir", t.TempDir())
	if code != 2 || !strings.Contains(out, "--interface") || !strings.Contains(out, "needs a certificate") {
		t.Errorf("submission= without a certificate: exit %d, %q; want 2 and an error naming --interface and the certificate", code, out)
	}
}
