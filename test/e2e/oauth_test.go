package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// gmailOAuth is a fake of Google's two ends for XOAUTH2: the token endpoint
// (refresh_token grant, tokens that expire after lifetime) and an SMTP
// server that demands XOAUTH2 and refuses a token that has expired, was
// revoked or was never issued, with Gmail's reply texts. Both listen on
// loopback.
type gmailOAuth struct {
	tokens   *httptest.Server
	ca       string // the SMTP server's certificate, for --client-tls-verify
	smtp     net.Listener
	lifetime time.Duration

	mu        sync.Mutex
	issued    map[string]time.Time // token -> expiry
	n         int
	failToken bool
	// refuseAtOnce answers a bad token with 535 at once, as Microsoft's
	// servers do, without Google's 334 JSON challenge.
	refuseAtOnce bool
	used         []string // the token each accepted message came with
	conns        []*smtp.Conn
}

func newGmailOAuth(t *testing.T, lifetime time.Duration) *gmailOAuth {
	g := &gmailOAuth{lifetime: lifetime, issued: map[string]time.Time{}}
	g.tokens = httptest.NewServer(http.HandlerFunc(g.token))
	t.Cleanup(g.tokens.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(g)
	srv.Domain = "smtp.gmail.example"
	// As smtp.gmail.com: STARTTLS first, AUTH only after it.
	cert, key, _ := certFiles(t, t.TempDir())
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}}
	g.ca = cert
	srv.ErrorLog = nopLogger{}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	g.smtp = l
	return g
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// waitRenewable sleeps until the relay renews tok before using it: three
// quarters of its life are gone (internal/auth renews then).
func (g *gmailOAuth) waitRenewable(tok string) {
	g.mu.Lock()
	at := g.issued[tok].Add(-g.lifetime/4 + time.Second)
	g.mu.Unlock()
	time.Sleep(time.Until(at))
}

func (g *gmailOAuth) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if g.failToken || id != "cid.apps.googleusercontent.com" || secret != "GOCSPX-s3cret" ||
		r.Form.Get("grant_type") != "refresh_token" || r.Form.Get("refresh_token") != "1//0grefresh" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
		return
	}
	g.n++
	tok := fmt.Sprintf("ya29.token-%d", g.n)
	g.issued[tok] = time.Now().Add(g.lifetime)
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(g.lifetime / time.Second), "scope": "https://mail.google.com/"})
}

// revoke makes tok invalid and drops every open session, as a password
// change does, so that the next session must log in again.
func (g *gmailOAuth) revoke(tok string) {
	g.mu.Lock()
	delete(g.issued, tok)
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (g *gmailOAuth) setFail(on bool) {
	g.mu.Lock()
	g.failToken = on
	g.mu.Unlock()
}

func (g *gmailOAuth) accepted() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.used...)
}

func (g *gmailOAuth) NewSession(c *smtp.Conn) (smtp.Session, error) {
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	return &gmailSession{g: g}, nil
}

type gmailSession struct {
	g     *gmailOAuth
	token string // the token AUTH succeeded with, "" before
}

func (s *gmailSession) AuthMechanisms() []string { return []string{"XOAUTH2", "PLAIN"} }

func (s *gmailSession) Auth(mech string) (sasl.Server, error) {
	if mech != "XOAUTH2" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return &xoauth2Server{s: s}, nil
}

// xoauth2Server checks "user=...^Aauth=Bearer TOKEN^A^A"; a bad token gets
// Google's JSON challenge, then 535 5.7.8 after the client's empty answer.
type xoauth2Server struct {
	s      *gmailSession
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
			Message: "Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials - gsmtp"}
	}
	var tok string
	for _, kv := range bytes.Split(resp, []byte{1}) {
		if v, ok := bytes.CutPrefix(kv, []byte("auth=Bearer ")); ok {
			tok = string(v)
		}
	}
	x.s.g.mu.Lock()
	exp, ok := x.s.g.issued[tok]
	x.s.g.mu.Unlock()
	if !ok || time.Now().After(exp) {
		x.s.g.mu.Lock()
		atOnce := x.s.g.refuseAtOnce
		x.s.g.mu.Unlock()
		if atOnce {
			return nil, true, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
		}
		x.failed = true
		return []byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	x.s.token = tok
	return nil, true, nil
}

func (s *gmailSession) Mail(string, *smtp.MailOptions) error {
	if s.token == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication Required. - gsmtp"}
	}
	return nil
}
func (s *gmailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *gmailSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	s.g.mu.Lock()
	s.g.used = append(s.g.used, s.token)
	s.g.mu.Unlock()
	return nil
}
func (s *gmailSession) Reset()        {}
func (s *gmailSession) Logout() error { return nil }

// TestOAuth2Refresh forwards to a Gmail-like server that demands XOAUTH2,
// with an oauth2 line in the client secrets file (client id, secret,
// refresh token and the fake's token URL). The relay gets a token, uses it
// while fresh, refreshes it before it expires, and when the token endpoint
// refuses, defers the message (never bounces it) and says so in its log;
// once the endpoint answers again the message goes. A token the server
// revokes is dropped and replaced at the next attempt.
func TestOAuth2Refresh(t *testing.T) {
	t.Parallel()
	g := newGmailOAuth(t, 12*time.Second)
	dir := t.TempDir()
	secrets := filepath.Join(dir, "client.auth")
	line := fmt.Sprintf("client oauth2 me@gmail.com cid.apps.googleusercontent.com,GOCSPX-s3cret,1//0grefresh,%s/token\n", g.tokens.URL)
	if err := os.WriteFile(secrets, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--log", "--forward-on-disconnect", "--no-bounces",
		"--forward-to", g.smtp.Addr().String(), "--client-tls", "--client-tls-verify", g.ca, "--client-auth", secrets, "--interface", "127.0.0.1", "--spool-dir", spool)

	send := func(n int) {
		t.Helper()
		mustSend(t, r.addr(), "alice@example.org", []string{fmt.Sprintf("rcpt%d@example.net", n)}, message(fmt.Sprintf("oauth %d", n)))
	}
	waitDelivered := func(n int, want string) {
		t.Helper()
		e := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
			return e.Get("to") == fmt.Sprintf("<rcpt%d@example.net>", n) && e.Get("result") == "sent"
		})
		if e == nil {
			return
		}
		if got := g.accepted(); len(got) == 0 || got[len(got)-1] != want {
			t.Errorf("message %d went with tokens %v; want the last one %s", n, got, want)
		}
	}
	waitDeferred := func(n int) *maillog.Entry {
		t.Helper()
		return r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
			return e.Get("to") == fmt.Sprintf("<rcpt%d@example.net>", n) && e.Get("result") != "sent"
		})
	}

	// 1. The first token, then the same one while it is fresh.
	send(1)
	waitDelivered(1, "ya29.token-1")
	send(2)
	waitDelivered(2, "ya29.token-1")

	// 2. Once three quarters of its life are gone the server would
	// still take it, but the relay refreshes first. (Twelve seconds of
	// life: a loaded machine took eight to deliver the first two.)
	g.waitRenewable("ya29.token-1")
	send(3)
	waitDelivered(3, "ya29.token-2")

	// 3. The token endpoint refuses: the message waits, and the relay
	// says why, as an error.
	g.setFail(true)
	g.waitRenewable("ya29.token-2")
	send(4)
	e := waitDeferred(4)
	if e != nil && e.Get("result") != "deferred" {
		t.Errorf("delivery line after a refresh failure = %v; want result=deferred", e.Fields)
	}
	if !strings.Contains(r.stderr(), "OAuth2 token refresh failed") || !strings.Contains(r.stderr(), "invalid_grant") {
		t.Errorf("the relay's log does not report the refresh failure:\n%s", r.stderr())
	}
	// The delivery line is written before the claim ends: the message is
	// "claimed" for a moment after it (the clean-clone CI saw it).
	l := opsList(t, spool)
	for deadline := time.Now().Add(5 * time.Second); len(l.Messages) == 1 && l.Messages[0].State == "claimed" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		l = opsList(t, spool)
	}
	if len(l.Messages) != 1 || l.Messages[0].State != "ready" {
		t.Fatalf("spool after a refresh failure = %+v; want the message, ready", l.Messages)
	}
	g.setFail(false)
	if _, errOut, code := opsCmd(t, "", "queue", "flush", "--spool-dir", spool); code != 0 {
		t.Fatalf("queue flush: exit %d, %s", code, errOut)
	}
	waitDelivered(4, "ya29.token-3")

	// 4. The server revokes the token and drops its sessions: an attempt
	// is refused with 535 and deferred, the token dropped, and a retry
	// gets a new one. (A first attempt may find the parked session gone.)
	g.revoke("ya29.token-3")
	send(5)
	waitDeferred(5)
	sent5 := func() bool {
		return len(mailEvents(r.stderr(), "delivery")) > 0 && strings.Contains(r.stderr(), "to=<rcpt5@example.net> relay="+g.smtp.Addr().String()+" result=sent")
	}
	for i := 0; i < 4 && !sent5(); i++ {
		if _, errOut, code := opsCmd(t, "", "queue", "flush", "--spool-dir", spool); code != 0 {
			t.Fatalf("queue flush: exit %d, %s", code, errOut)
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !sent5(); {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitDelivered(5, "ya29.token-4")
	if !strings.Contains(r.stderr(), "to=<rcpt5@example.net>") || !strings.Contains(r.stderr(), "535 5.7.8") {
		t.Errorf("no deferral with the server's 535 for the revoked token:\n%s", r.stderr())
	}
	if strings.Contains(r.stderr(), "bounce") {
		t.Errorf("something bounced:\n%s", r.stderr())
	}
}
