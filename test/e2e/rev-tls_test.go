package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// popCapa connects to a POP3 server at addr and returns its CAPA lines.
func popCapa(t *testing.T, addr string) []string {
	t.Helper()
	harness.WaitPort(t, addr, 5*time.Second)
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	if greet, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(greet, "+OK") {
		t.Fatalf("POP3 greeting %q, %v", greet, err)
	}
	fmt.Fprintf(nc, "CAPA\r\n")
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("CAPA: %v after %q", err, lines)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// TestRevTLSOfferNeedsServerTLS: STARTTLS on the SMTP port, and STLS on the
// POP3 port, are offered with --server-tls (tls.server), as E-MailRelay,
// docs/policy.md, docs/pop3.md and etc/relaykeeper.toml say. A certificate
// given for a submission= listener alone used to switch STARTTLS on for the
// plain SMTP port too, and STLS for POP3, with tls.server = false.
func TestRevTLSOfferNeedsServerTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	popAuth := writeFile(t, dir, "pop.auth", "server plain alice alicepw\n", 0o600)
	run := func(extra ...string) (smtpAddr, subAddr, popAddr string) {
		sub := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		pop := harness.FreePort(t)
		args := append([]string{"--as-server", "--interface", "127.0.0.1", "--interface", "submission=" + sub,
			"--interface", fmt.Sprintf("pop=127.0.0.1:%d", pop), "--pop", "--pop-auth", popAuth,
			"--server-tls-certificate", pem, "--spool-dir", t.TempDir()}, extra...)
		r := startRelay(t, "127.0.0.1", args...)
		harness.WaitPort(t, sub, 5*time.Second)
		return r.addr(), sub, fmt.Sprintf("127.0.0.1:%d", pop)
	}

	smtpAddr, sub, pop := run()
	c := mustDial(t, smtpAddr, "127.0.0.1")
	if _, ok := ehloKeywords(t, c)["STARTTLS"]; ok {
		t.Errorf("port 25 without --server-tls offers STARTTLS")
	}
	mustCmd(t, c, "502 5.5.1 Error: command not implemented", "STARTTLS")
	s := mustDial(t, sub, "127.0.0.1")
	if _, ok := ehloKeywords(t, s)["STARTTLS"]; !ok {
		t.Errorf("the submission port offers no STARTTLS; it requires it")
	}
	for _, l := range popCapa(t, pop) {
		if l == "STLS" {
			t.Errorf("POP3 without --server-tls offers STLS")
		}
	}

	smtpAddr, _, pop = run("--server-tls")
	c = mustDial(t, smtpAddr, "127.0.0.1")
	if _, ok := ehloKeywords(t, c)["STARTTLS"]; !ok {
		t.Errorf("port 25 with --server-tls offers no STARTTLS")
	}
	if capa := popCapa(t, pop); !strings.Contains(strings.Join(capa, "\n"), "STLS") {
		t.Errorf("POP3 with --server-tls: CAPA %q lacks STLS", capa)
	}
}

// TestRevTLSMayFallsBackToPlain: at Postfix's "may" level (--client-tls, no
// credentials) an upstream that offers STARTTLS and then refuses it (a
// Postfix without its certificate answers "454 4.7.0 TLS not available due
// to local problem") gets the mail in plain text, as from Postfix; at
// "encrypt" (--client-tls-required) it gets nothing, and the client hears
// a 4xx. Every message used to wait, at "may", for a STARTTLS that never
// worked.
func TestRevTLSMayFallsBackToPlain(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.ehlo = func(int) []string { return []string{"PIPELINING", "STARTTLS"} }
	may := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), "--client-tls",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx, err := sendMail(may.addr(), "may@example.org", []string{"bob@example.net"}, message("may level"))
	if err != nil {
		t.Errorf("--client-tls, upstream refusing STARTTLS: %v (MAIL %q, final %q); want the message relayed in plain text", err, tx.Mail, tx.Final)
	}
	if _, ok := up.waitFrom("may@example.org", 5*time.Second); !ok {
		t.Errorf("the upstream got no message at level may; relay log:\n%s", may.stderr())
	}

	enc := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), "--client-tls-required",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx, err = sendMail(enc.addr(), "encrypt@example.org", []string{"bob@example.net"}, message("encrypt level"))
	if err == nil || tx.Mail.code()/100 != 4 {
		t.Errorf("--client-tls-required, upstream refusing STARTTLS: %v, MAIL %q; want a 4xx", err, tx.Mail)
	}
	if _, ok := up.waitFrom("encrypt@example.org", 500*time.Millisecond); ok {
		t.Errorf("the upstream got a message in plain text at level encrypt")
	}
}

// TestRevTLSThrottleParallel: auth.failure_limit bounds the passwords an
// address may try, however it sends them. Twelve connections from one
// address, each past STARTTLS, guess at once; only failure_limit of the
// guesses may be checked (535), the rest hear 454 4.7.0. Each AUTH was
// let through as long as the failures already counted were under the
// limit, so every guess that started before the first one failed was
// checked: an attacker got max_connections_per_ip guesses per window.
func TestRevTLSThrottleParallel(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, bcryptLine(t, "carol", "carol pw")+"\n", "[auth]\nfailure_limit = 3\nfailure_window = \"10m\"\n")
	const n = 12
	cs := make([]*smtpClient, n)
	for i := range cs {
		cs[i] = mustDial(t, r.addr(), "127.0.0.9")
		mustCmd(t, cs[i], "250", "EHLO client.e2e.test")
		if err := cs[i].startTLS(); err != nil {
			t.Fatal(err)
		}
		mustCmd(t, cs[i], "250", "EHLO client.e2e.test")
	}
	replies := make([]reply, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i], _ = c.cmd("AUTH PLAIN %s", authPlain("carol", fmt.Sprintf("guess %d", i)))
		}()
	}
	close(start)
	wg.Wait()
	checked := 0
	for _, rep := range replies {
		switch rep.String() {
		case authFailed:
			checked++
		case authThrottle:
		default:
			t.Errorf("a parallel guess heard %q; want %q or %q", rep, authFailed, authThrottle)
		}
	}
	if checked > 3 {
		t.Errorf("%d of %d parallel guesses were checked (535); want at most failure_limit = 3", checked, n)
	}
}

// TestRevTLSDebugPeerHidesAuth: a debug peer's conversation goes to the
// diagnostic log (log.debug_peers), but not its password: the initial
// response of AUTH and every answer to a 334 are shown hidden, as the
// relay's own logins to an upstream are. With auth.allow_insecure the
// log had "AUTH PLAIN AGFsaWNl..." and LOGIN's base64 password in it.
func TestRevTLSDebugPeerHidesAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := writeFile(t, dir, "auth.secrets", plainSecrets, 0o600)
	r := startPolicyRelay(t, "[auth]\nallow_insecure = true\n[log]\ndebug_peers = [\"127.0.0.1\"]\n", "--server-auth", sec)
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	ir := authPlain("alice", "alice pw")
	mustCmd(t, c, authOK, "AUTH PLAIN %s", ir)
	d := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, d, "250", "EHLO client.e2e.test")
	mustCmd(t, d, "334 VXNlcm5hbWU6", "AUTH LOGIN")
	user := base64.StdEncoding.EncodeToString([]byte("bob"))
	pass := base64.StdEncoding.EncodeToString([]byte("bobpw"))
	mustCmd(t, d, "334 UGFzc3dvcmQ6", "%s", user)
	mustCmd(t, d, authOK, "%s", pass)
	mustCmd(t, d, "221", "QUIT")
	if len(waitDiag(r, 5*time.Second, "debug_peer=", "QUIT")) == 0 {
		t.Fatalf("no debug-peer trace of the session:\n%s", r.stderr())
	}
	for _, l := range diagLines(r, "debug_peer=") {
		for _, secret := range []string{ir, pass} {
			if strings.Contains(l, secret) {
				t.Errorf("the debug-peer trace shows a password: %s", l)
			}
		}
	}
	if len(diagLines(r, "debug_peer=", "AUTH PLAIN")) == 0 {
		t.Errorf("the trace does not show the AUTH command itself:\n%s", r.stderr())
	}
}

// TestRevTLSNoCommonMechanismDefers: a smarthost that offers none of the
// mechanisms the client line can use (here XOAUTH2 only, for a plain
// password) is a configuration to fix, the relay's or the smarthost's,
// and often a passing one (an AUTH backend down): the message is
// deferred with the reason, and waits, as Postfix defers with "offered no
// compatible authentication mechanisms". It used to fail permanently, so
// every queued message bounced.
func TestRevTLSNoCommonMechanismDefers(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH XOAUTH2"} }
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test app-password-1\n", 0o600)
	// A smarthost on 127.0.0.1 with no TLS switch gets the login without
	// TLS (docs/tls.md), so the raw upstream can offer AUTH.
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.addr(), "--forward-on-disconnect",
		"--client-auth", sec, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("no common mechanism"))
	id := queuedID(t, tx.Final)
	d := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	t.Logf("delivery line: %v", d.Fields)
	if d.Get("result") != "deferred" || !strings.HasPrefix(d.Get("reply"), "4") || !strings.Contains(d.Get("reply"), "line 1") {
		t.Errorf("delivery line %v; want result=deferred, a 4xx naming the client line", d.Fields)
	}
	if state, env := waitEnvelope(t, r.spool, id, 5*time.Second, func(s string, e envelope) bool { return s == "envelope" }); state != "envelope" {
		t.Errorf("message %s is %s; want it waiting in the spool:\n%s", id, state, env)
	}
}

// TestRevTLSReceivedProtocol: the Received header's "with" names what the
// session was (RFC 3848): ESMTPS over TLS, ESMTPSA over TLS with a login,
// as Postfix writes them. Downstream filters (SpamAssassin's trust path)
// read the A to know the hop was authenticated, and skip the dial-up
// blocklists for the client's address; the relay wrote ESMTPS for a
// logged-in client.
func TestRevTLSReceivedProtocol(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	send := func(c *smtpClient, from string) string {
		t.Helper()
		mustCmd(t, c, "250", "MAIL FROM:<%s>", from)
		mustCmd(t, c, "250", "RCPT TO:<bob@relay.example>")
		mustCmd(t, c, "354", "DATA")
		rep := mustCmd(t, c, "250", "%s", strings.TrimSuffix(strings.ReplaceAll(message(from), "\n", "\r\n"), "\r\n")+"\r\n.")
		data, err := os.ReadFile(filepath.Join(r.spool, queuedID(t, rep)+".content"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	c := loginTLS(t, r.addr(), "127.0.0.1", "alice", "alice pw", authOK)
	if got := send(c, "alice@example.org"); !strings.Contains(got, ") with ESMTPSA id ") {
		t.Errorf("a logged-in client over TLS: Received %q; want \"with ESMTPSA\"", got[:strings.Index(got, ";")])
	}
	d := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, d, "250", "EHLO client.e2e.test")
	if err := d.startTLS(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, d, "250", "EHLO client.e2e.test")
	if got := send(d, "carol@example.org"); !strings.Contains(got, ") with ESMTPS id ") {
		t.Errorf("a client over TLS without a login: Received %q; want \"with ESMTPS\"", got[:strings.Index(got, ";")])
	}
}
