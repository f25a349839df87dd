package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// tls21Upstream is a smarthost that offers STARTTLS and, careless as some
// are, AUTH PLAIN before it too; it records, for each login, whether it
// came over TLS.
type tls21Upstream struct {
	addr string // "localhost:PORT": a name, as a smarthost is named

	mu     sync.Mutex
	logins []bool // TLS active at each AUTH
	mails  int
}

func newTLS21Upstream(t *testing.T, offerTLS bool) *tls21Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &tls21Upstream{addr: "localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	srv := smtp.NewServer(u)
	srv.Domain = "smarthost.tls21.example"
	srv.AllowInsecureAuth = true
	cert, key, _ := certFiles(t, t.TempDir())
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if offerTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}}
	}
	srv.ErrorLog = nopLogger{}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *tls21Upstream) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &tls21Session{u: u, c: c}, nil
}

func (u *tls21Upstream) seen() (logins []bool, mails int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]bool(nil), u.logins...), u.mails
}

type tls21Session struct {
	u *tls21Upstream
	c *smtp.Conn
}

func (s *tls21Session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *tls21Session) Auth(string) (sasl.Server, error) {
	_, isTLS := s.c.TLSConnectionState()
	s.u.mu.Lock()
	s.u.logins = append(s.u.logins, isTLS)
	s.u.mu.Unlock()
	return sasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}

func (s *tls21Session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *tls21Session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *tls21Session) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.u.mu.Lock()
	s.u.mails++
	s.u.mu.Unlock()
	return nil
}
func (s *tls21Session) Reset()        {}
func (s *tls21Session) Logout() error { return nil }

// TestTls21VerifyNoneStillEncrypts: --client-tls-verify <none> is the
// administrator's opt-out from certificate verification (a smarthost with
// a self-signed certificate), not from encryption. With --client-auth and
// no other TLS switch, the relay ignored the smarthost's STARTTLS and sent
// the password in plain text; with --client-tls too, a smarthost whose
// STARTTLS was stripped got it in plain text. The login must go over TLS
// (any certificate), whatever the other switches say.
func TestTls21VerifyNoneStillEncrypts(t *testing.T) {
	t.Parallel()
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test app-password-1\n", 0o600)
	start := func(u *tls21Upstream, extra ...string) *relay {
		args := append([]string{"--as-proxy", u.addr, "--client-auth", sec, "--client-tls-verify", "<none>",
			"--interface", "127.0.0.1", "--spool-dir", t.TempDir()}, extra...)
		return startRelay(t, "127.0.0.1", args...)
	}
	u := newTLS21Upstream(t, true)
	r := start(u)
	mustSend(t, r.addr(), "alice@example.org", []string{outsideRcpt}, message("verify none"))
	if logins, mails := u.seen(); len(logins) != 1 || !logins[0] || mails != 1 {
		t.Errorf("logins over TLS %v, %d messages; want one login, over TLS, and the message", logins, mails)
	}

	// STARTTLS stripped (or never offered): no login, no message.
	bare := newTLS21Upstream(t, false)
	for _, extra := range [][]string{nil, {"--client-tls"}} {
		r := start(bare, extra...)
		tx, err := sendMail(r.addr(), "alice@example.org", []string{outsideRcpt}, message("stripped"))
		if err == nil || tx.Mail.code()/100 != 4 {
			t.Errorf("with %q, no STARTTLS upstream: %v, MAIL reply %q; want a 4xx", extra, err, tx.Mail)
		}
	}
	if logins, mails := bare.seen(); len(logins) != 0 || mails != 0 {
		t.Errorf("an upstream without STARTTLS saw logins %v and %d messages; want none", logins, mails)
	}
}

// TestTls21OAuth2RefusedAtOnce: a server that refuses an XOAUTH2 token with
// 535 straight away (Microsoft's do; only Google's send the 334 JSON
// challenge first) must also make the relay drop the cached token, so that
// the next attempt gets a new one. The relay kept the revoked token until
// it was due for renewal (most of an hour with real tokens), and every
// attempt until then failed.
func TestTls21OAuth2RefusedAtOnce(t *testing.T) {
	t.Parallel()
	g := newGmailOAuth(t, time.Hour)
	g.mu.Lock()
	g.refuseAtOnce = true
	g.mu.Unlock()
	dir := t.TempDir()
	line := fmt.Sprintf("client oauth2 me@outlook.example cid.apps.googleusercontent.com,GOCSPX-s3cret,1//0grefresh,%s/token\n", g.tokens.URL)
	secrets := writeFile(t, dir, "client.auth", line, 0o600)
	spool := filepath.Join(dir, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--log", "--forward-on-disconnect", "--no-bounces",
		"--forward-to", g.smtp.Addr().String(), "--client-tls", "--client-tls-verify", g.ca, "--client-auth", secrets,
		"--interface", "127.0.0.1", "--spool-dir", spool, "--config", writeConfig(t, ""))
	sent := func(n int) bool {
		return strings.Contains(r.stderr(), fmt.Sprintf("to=<rcpt%d@example.net> relay=%s result=sent", n, g.smtp.Addr()))
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"rcpt1@example.net"}, message("oauth 1"))
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !sent(1); {
		time.Sleep(50 * time.Millisecond)
	}
	if !sent(1) {
		t.Fatalf("the first message was not delivered:\n%s", r.stderr())
	}
	g.revoke("ya29.token-1")
	mustSend(t, r.addr(), "alice@example.org", []string{"rcpt2@example.net"}, message("oauth 2"))
	// Retries come every second or two (writeConfig's back-off); a queue
	// flush would reload the secrets, and with them the token source.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !sent(2); {
		time.Sleep(100 * time.Millisecond)
	}
	if got := g.accepted(); !sent(2) || len(got) != 2 || got[1] != "ya29.token-2" {
		t.Errorf("after the server refused the token at once: messages went with tokens %v; want the second with a new token, ya29.token-2:\n%s", got, r.stderr())
	}
}

// TestTls21ImplicitTLSHandshakeLogged: a client that fails the TLS
// handshake on an smtps port (a plain-text client, TLS 1.1 only, a bad
// certificate on its side) left nothing but connect and disconnect in the
// log, while the same failure after STARTTLS says "TLS handshake failed"
// with the client and the reason, as Postfix's "SSL_accept error" does.
func TestTls21ImplicitTLSHandshakeLogged(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	r := startRelay(t, "127.0.0.1", "--as-server", "--log", "--server-tls-connection", "--server-tls-certificate", pem,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c, err := net.DialTimeout("tcp", r.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "EHLO plain.example\r\n")
	io.Copy(io.Discard, c) // the relay closes the connection
	port := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	if l := waitDiag(r, 5*time.Second, "TLS handshake failed", port); len(l) == 0 || !strings.Contains(l[0], "does not look like a TLS handshake") {
		t.Errorf("no \"TLS handshake failed\" line naming the client 127.0.0.1:%s:\n%s", port, r.stderr())
	}
}

// TestTls21OverlongLineKeepsVerb: a command line past the longest the relay
// reads (12,288 octets, an AUTH line's limit) was judged by its tail, not
// its head: the mail log named a "command" cut from the middle of the
// line (for an AUTH line, a piece of the client's base64 credentials), and
// an overlong BDAT line got 500 instead of the 421 that closes the
// session, so that its chunk was then read as commands.
func TestTls21OverlongLineKeepsVerb(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	// Longer than the read buffer (16 KiB), so that it comes in pieces.
	mustCmd(t, c, "500 5.5.2 Error: command line too long", "NOOP %s", strings.Repeat("QUERTY", 4000))
	if l := r.events("reject"); len(l) != 1 || l[0].Get("command") != "NOOP" {
		t.Errorf("mail log for the overlong NOOP: %v; want one reject line naming command=NOOP", l)
	}
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	// The 6-octet chunk follows the command whatever the reply: it must
	// never be read as the command it looks like.
	rep, err := c.cmd("BDAT 6 LAST %s\r\nRSET", strings.Repeat(" ", 13000))
	if err != nil || !strings.HasPrefix(rep.String(), "421 4.5.2 ") {
		t.Errorf("an overlong BDAT line = %q, %v; want 421 4.5.2 and the connection closed", rep, err)
	}
}
