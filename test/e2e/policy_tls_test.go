package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// saslPostfix starts a private Postfix whose smtpd, like smtp.gmail.com:587,
// requires STARTTLS and then SASL AUTH (Cyrus SASL with a sasldb holding
// user@rk.test / password) before it relays, to sink. It skips the test
// when saslpasswd2 (Debian's sasl2-bin) is not installed.
func saslPostfix(t *testing.T, sink *harness.Sink, password string) *harness.Postfix {
	t.Helper()
	saslpasswd2, err := exec.LookPath("saslpasswd2")
	if err != nil {
		if saslpasswd2, err = exec.LookPath("/usr/sbin/saslpasswd2"); err != nil {
			harness.Missing(t, "saslpasswd2 is not installed (apt-get install sasl2-bin libsasl2-modules): no SASL backend for Postfix")
		}
	}
	if os.Geteuid() != 0 {
		harness.Missing(t, "a private Postfix needs root")
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		harness.Missing(t, "no postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	// Postfix's unprivileged smtpd reads the sasldb: a directory it can
	// traverse, not t.TempDir's 0700.
	dir, err := os.MkdirTemp("", "rksasl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "sasldb2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, saslpasswd2, "-c", "-p", "-f", db, "-u", "rk.test", "alice")
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v\n%s", err, out)
	}
	if err := os.Chown(db, uid, -1); err != nil {
		t.Fatal(err)
	}
	conf := "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: " + db + "\n"
	writeFile(t, dir, "smtpd.conf", conf, 0o644)
	_, _, both := certFiles(t, dir)
	p := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(sink.Addr()),
		MainCF: []string{
			"smtpd_tls_security_level = encrypt",
			"smtpd_tls_chain_files = " + both,
			"smtpd_tls_auth_only = yes",
			"smtpd_tls_loglevel = 1",
			"smtpd_sasl_auth_enable = yes",
			"smtpd_sasl_type = cyrus",
			"smtpd_sasl_path = smtpd",
			"cyrus_sasl_config_path = " + dir,
			"smtpd_sasl_security_options = noanonymous",
			// No trusted networks: only a login may relay.
			"mynetworks =",
			"smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination",
		},
	})
	// Debian's Postfix ignores cyrus_sasl_config_path and reads
	// $config_directory/sasl/smtpd.conf. smtpd starts, and reads it, at
	// the first connection, which is still to come.
	sasl := filepath.Join(p.ConfigDir(), "sasl")
	if err := os.MkdirAll(sasl, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sasl, "smtpd.conf", conf, 0o644)
	return p
}

// startGmailProxy runs relaykeeper --as-proxy UPSTREAM --client-tls
// --client-auth with one "client plain USER PASS" line, and
// --client-tls-verify VERIFY unless it is empty (then the relay verifies
// against the system's roots, since it sends credentials).
func startGmailProxy(t *testing.T, upstream, user, pass, verify string) *relay {
	t.Helper()
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain "+user+" "+pass+"\n", 0o600)
	args := []string{"--as-proxy", upstream, "--client-tls", "--client-auth", sec,
		"--interface", "127.0.0.1", "--domain", "relay.test", "--spool-dir", t.TempDir()}
	if verify != "" {
		args = append(args, "--client-tls-verify", verify)
	}
	return startRelay(t, "127.0.0.1", args...)
}

// TestTLSClientPostfixSASL is the Gmail set-up in miniature: relaykeeper
// --as-proxy with --client-tls and a "client plain" secret, in front of a
// real Postfix that requires STARTTLS and SASL AUTH, relaying to a sink.
// The message arrives, Postfix logged the TLS session and the login; with
// a wrong client password the client hears the upstream's 535 and nothing
// is kept anywhere.
func TestTLSClientPostfixSASL(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	pf := saslPostfix(t, sink, "app-password-1")

	// A plain client is refused by this upstream: it is really strict.
	c := mustDial(t, pf.Addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "530 5.7.0 Must issue a STARTTLS command first", "MAIL FROM:<a@example.org>")
	c.Close()

	// The test Postfix's certificate is self-signed: the explicit opt-out.
	r := startGmailProxy(t, pf.Addr(), "alice@rk.test", "app-password-1", "<none>")
	tx := mustSend(t, r.addr(), "alice@example.org", []string{outsideRcpt}, message("gmail in miniature"))
	if len(tx.Final) != 1 || !strings.HasPrefix(tx.Final[0], "250 2.0.0 Ok: queued as ") {
		t.Errorf("final reply through the proxy = %q; want Postfix's \"250 2.0.0 Ok: queued as ...\"", tx.Final)
	}
	pf.WaitLog(t, "sasl_method=PLAIN, sasl_username=alice@rk.test", 10*time.Second)
	pf.WaitLog(t, "TLS connection established from", 10*time.Second)
	sink.WaitCount(t, 1, 20*time.Second)
	if m := sink.Messages()[0]; m.From != "alice@example.org" || !strings.Contains(m.Data, "with ESMTPSA id") {
		t.Errorf("sink got from %q; want alice@example.org, carried by Postfix \"with ESMTPSA\" (TLS and AUTH):\n%s", m.From, head(m.Data))
	}
	e := r.waitEvent("proxy", 5*time.Second, nil)
	if e.Get("result") != "sent" || e.Get("relay") != pf.Addr() {
		t.Errorf("proxy line %v; want result=sent relay=%s", e.Fields, pf.Addr())
	}
	checkSpoolEmpty(t, r.spool)

	bad := startGmailProxy(t, pf.Addr(), "alice@rk.test", "wrong-password", "<none>")
	tx, err := sendMail(bad.addr(), "alice@example.org", []string{outsideRcpt}, message("wrong password"))
	if err == nil || !(tx.Mail.code() == 535 || tx.Mail.code()/100 == 4) {
		t.Errorf("with a wrong client password: %v, MAIL reply %q; want the upstream's 535 or a 4xx", err, tx.Mail)
	}
	if tx.Mail.code() == 535 && !strings.HasPrefix(tx.Mail.String(), "535 5.7.8 Error: authentication failed") {
		t.Errorf("MAIL reply %q; want Postfix's own \"535 5.7.8 Error: authentication failed...\"", tx.Mail)
	}
	t.Logf("wrong client password: the client heard %q at MAIL", tx.Mail)
	pf.WaitLog(t, "SASL PLAIN authentication failed", 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := sink.Count(); n != 1 {
		t.Errorf("sink has %d messages; want still 1", n)
	}
	pf.WaitEmpty(t, 10*time.Second) // the first message, delivered; nothing of the second
	checkSpoolEmpty(t, bad.spool)
}

// authUpstream starts relaykeeper as a smarthost that requires STARTTLS
// (with a self-signed certificate, returned as pem) and then AUTH as
// alice@rk.test / app-password-1, forwarding to sink.
func authUpstream(t *testing.T, sink *harness.Sink) (up *relay, pem string) {
	t.Helper()
	dir := t.TempDir()
	_, _, pem = certFiles(t, dir)
	sec := writeFile(t, dir, "server.secrets", "server plain alice@rk.test app-password-1\n", 0o600)
	up = startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--server-tls", "--server-tls-certificate", pem, "--server-tls-required", "--server-auth", sec,
		"--interface", "127.0.0.1", "--domain", "upstream.test", "--spool-dir", t.TempDir())
	return up, pem
}

// TestTLSClientRelaykeeperUpstream is the same set-up with relaykeeper in
// Postfix's place (--as-server --server-tls-required --server-auth), so it
// runs where no SASL backend for Postfix is installed.
func TestTLSClientRelaykeeperUpstream(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)

	// The relay trusts the test's own certificate, as its CA.
	r := startGmailProxy(t, up.addr(), "alice@rk.test", "app-password-1", pem)
	tx := mustSend(t, r.addr(), "alice@example.org", []string{outsideRcpt}, message("relaykeeper upstream"))
	id := queuedID(t, tx.Final) // the upstream's own "queued as", passed through
	e := up.waitEvent("accept", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	if e.Get("auth") != "alice@rk.test" {
		t.Errorf("upstream accept line %v; want auth=alice@rk.test", e.Fields)
	}
	sink.WaitCount(t, 1, 15*time.Second)
	if m := sink.Messages()[0]; !strings.Contains(m.Data, "by upstream.test (relaykeeper) with ESMTPSA id "+id) {
		t.Errorf("sink message lacks the upstream's Received \"with ESMTPSA id %s\" (TLS and AUTH):\n%s", id, head(m.Data))
	}

	bad := startGmailProxy(t, up.addr(), "alice@rk.test", "wrong-password", pem)
	tx, err := sendMail(bad.addr(), "alice@example.org", []string{outsideRcpt}, message("wrong password"))
	// The relay's own credentials are wrong, not the client's message: a
	// temporary refusal carrying the upstream's reply, as Postfix's client
	// soft-bounces here.
	if want := "454 4.7.0 upstream auth failed: " + authFailed; err == nil || tx.Mail.String() != want {
		t.Errorf("with a wrong client password: %v, MAIL reply %q; want %q", err, tx.Mail, want)
	}
	time.Sleep(300 * time.Millisecond)
	if n := sink.Count(); n != 1 {
		t.Errorf("sink has %d messages; want still 1", n)
	}
	checkSpoolEmpty(t, bad.spool)
}

// TestTLSClientAuthVerifiesByDefault: a relay that logs in to its
// smarthost verifies the smarthost's certificate without being told to.
// Against a certificate no root vouches for, the password is never sent:
// the client hears a 4xx naming the handshake, and the upstream sees no
// login. Trusting the test's CA, or the explicit <none>, lets it through.
func TestTLSClientAuthVerifiesByDefault(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)

	r := startGmailProxy(t, up.addr(), "alice@rk.test", "app-password-1", "")
	tx, err := sendMail(r.addr(), "alice@example.org", []string{outsideRcpt}, message("unverified upstream"))
	if err == nil || tx.Mail.code()/100 != 4 || !strings.Contains(tx.Mail.String(), "tls handshake") {
		t.Errorf("to an unverifiable smarthost with credentials: %v, MAIL reply %q; want a 4xx naming the TLS handshake", err, tx.Mail)
	}
	time.Sleep(300 * time.Millisecond)
	if got := up.events("accept"); len(got) != 0 {
		t.Errorf("the upstream accepted %d messages; want none", len(got))
	}
	for _, e := range up.events("auth") {
		t.Errorf("the upstream saw a login: %v", e.Fields)
	}
	checkSpoolEmpty(t, r.spool)

	for _, verify := range []string{pem, "<none>"} {
		ok := startGmailProxy(t, up.addr(), "alice@rk.test", "app-password-1", verify)
		mustSend(t, ok.addr(), "alice@example.org", []string{outsideRcpt}, message("verified upstream"))
	}
	sink.WaitCount(t, 2, 15*time.Second)
}

// TestTLSClientRequiredNoSTARTTLS: with --client-tls-required and a
// smarthost that offers no STARTTLS (smtp-sink), nothing is sent: in
// store-and-forward mode the message is accepted, its delivery deferred
// and it stays ready in the spool; as a proxy the client hears a 4xx.
func TestTLSClientRequiredNoSTARTTLS(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--client-tls-required", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("tls required"))
	id := queuedID(t, tx.Final)
	d := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	t.Logf("delivery without STARTTLS: %s", d.Get("reply"))
	if d.Get("result") != "deferred" || !strings.HasPrefix(d.Get("reply"), "4") || !strings.Contains(d.Get("reply"), "STARTTLS") {
		t.Errorf("delivery line %v; want result=deferred with a 4xx reply naming STARTTLS", d.Fields)
	}
	state, env := waitEnvelope(t, r.spool, id, 5*time.Second, func(s string, e envelope) bool { return s == "envelope" })
	if state != "envelope" || env.get("X-Relaykeeper-Attempts") != "1" {
		t.Errorf("message %s is %s with attempts %q; want ready (.envelope) after 1 deferred attempt:\n%s", id, state, env.get("X-Relaykeeper-Attempts"), env)
	}
	if n := sink.Count(); n != 0 {
		t.Errorf("sink got %d messages over plain text; want 0", n)
	}

	p := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--client-tls-required",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	ptx, err := sendMail(p.addr(), "alice@example.org", []string{"bob@example.net"}, message("tls required proxy"))
	t.Logf("proxy without STARTTLS upstream: MAIL reply %q", ptx.Mail)
	if err == nil || ptx.Mail.code()/100 != 4 || !strings.Contains(ptx.Mail.String(), "STARTTLS") {
		t.Errorf("through the proxy: %v, MAIL reply %q; want a 4xx naming STARTTLS", err, ptx.Mail)
	}
	time.Sleep(300 * time.Millisecond)
	if n := sink.Count(); n != 0 {
		t.Errorf("sink got %d messages over plain text; want 0", n)
	}
	checkSpoolEmpty(t, p.spool)
}

// TestTLSSTARTTLSInjection: commands pipelined behind STARTTLS in the same
// packet (CVE-2011-0411) were sent in plain text and must be thrown away:
// after the handshake the injected RSET gets no reply and the injected
// MAIL was never run.
func TestTLSSTARTTLSInjection(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	r := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", pem,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n")); err != nil {
		t.Fatal(err)
	}
	rep, err := c.read()
	if err != nil || rep.code() != 220 {
		t.Fatalf("STARTTLS with injected commands = %q, %v; want 220", rep, err)
	}
	if n := c.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes after the 220, before the handshake; want none", n)
	}
	// Handshake by hand (c.startTLS would send another STARTTLS).
	if err := handshake(c); err != nil {
		t.Fatalf("TLS handshake after injected commands: %v", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(time.Second))
	line, err := c.r.ReadString('\n')
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("after the handshake the server sent %q (%v); want nothing: the injected RSET must not be answered", line, err)
	}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	// Had the injected MAIL run, this RCPT would be accepted.
	mustCmd(t, c, "503 5.5.1 Error: need MAIL command", "RCPT TO:<bob@example.net>")
}

// TestTLSClientAuthNeverInClear: a relay that logs in to its smarthost
// with --client-tls never sends the password to one that offers no
// STARTTLS (or whose STARTTLS an attacker stripped): "may" becomes
// "verify", the client hears a 4xx naming STARTTLS and the upstream sees
// no AUTH. Without any TLS switch, a smarthost named as this host gets the
// password in plain text, as E-MailRelay and Postfix send it (one
// elsewhere gets it only over verified TLS: internal/remote's
// TestTLSSettingsLoopback).
func TestTLSClientAuthNeverInClear(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN LOGIN"} }
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test app-password-1\n", 0o600)
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), "--client-auth", sec, "--client-tls",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx, err := sendMail(r.addr(), "alice@example.org", []string{outsideRcpt}, message("no tls upstream"))
	if err == nil || tx.Mail.code()/100 != 4 || !strings.Contains(tx.Mail.String(), "STARTTLS") {
		t.Errorf("--client-tls --client-auth, upstream without STARTTLS: %v, MAIL reply %q; want a 4xx naming STARTTLS", err, tx.Mail)
	}
	checkSpoolEmpty(t, r.spool)
	for conn, lines := range up.connLines() {
		for _, l := range lines {
			if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
				t.Errorf("upstream connection %d got %q over plain text", conn, l)
			}
		}
	}
	if n := len(up.messages()); n != 0 {
		t.Errorf("upstream got %d messages; want none", n)
	}

	local := newRawUpstream(t)
	local.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN LOGIN"} }
	r = startRelay(t, "127.0.0.1", "--as-proxy", local.addr(), "--client-auth", sec,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	sendMail(r.addr(), "alice@example.org", []string{outsideRcpt}, message("local smarthost")) // the fake knows no AUTH
	authed := false
	for _, lines := range local.connLines() {
		for _, l := range lines {
			authed = authed || strings.HasPrefix(strings.ToUpper(l), "AUTH")
		}
	}
	if !authed {
		t.Errorf("a smarthost on 127.0.0.1 without a TLS switch got no AUTH; want it, as E-MailRelay sends it")
	}
}

// TestTLSClientAuthOnlyToSmarthost: the --client-auth credentials are the
// smarthost's. Mail that a transport sends to another next hop goes there
// without them (Postfix looks smtp_sasl_password_maps up by next hop), and
// arrives; mail for the smarthost still logs in there, verified.
func TestTLSClientAuthOnlyToSmarthost(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)
	other := newRawUpstream(t)
	other.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN LOGIN"} }
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test app-password-1\n", 0o600)
	cfg := writeConfig(t, "[routing]\ntransport_maps = [\"inline:{ other.example=other: }\"]\n"+
		"[transports.other]\nnexthop = \"["+strings.Replace(other.addr(), ":", "]:", 1)+"\"\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.addr(), "--forward-on-disconnect",
		"--client-tls", "--client-tls-verify", pem, "--client-auth", sec, "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@other.example"}, message("to the transport's next hop"))
	mustSend(t, r.addr(), "carol@example.org", []string{outsideRcpt}, message("to the smarthost"))
	if _, ok := other.waitFrom("alice@example.org", 15*time.Second); !ok {
		t.Errorf("the transport's next hop got no message; relay log:\n%s", r.stderr())
	}
	sink.WaitCount(t, 1, 15*time.Second)
	for conn, lines := range other.connLines() {
		for _, l := range lines {
			if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
				t.Errorf("the transport's next hop got the smarthost's credentials on connection %d: %q", conn, l)
			}
		}
	}
	if len(up.events("auth")) == 0 && !strings.Contains(up.stderr(), "auth=alice@rk.test") {
		t.Errorf("the smarthost saw no login; its log:\n%s", up.stderr())
	}
}
