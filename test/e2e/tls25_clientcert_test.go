package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// tls25Upstream is a smarthost whose STARTTLS requires a client
// certificate; it counts the messages it gets, and those over TLS.
type tls25Upstream struct {
	addr string

	mu          sync.Mutex // guards mails and tlsMails
	mails, tlsM int
}

// newTLS25Upstream starts the server; implicit makes it speak TLS from
// the first byte (port 465) instead of offering STARTTLS.
func newTLS25Upstream(t *testing.T, implicit bool) *tls25Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &tls25Upstream{addr: "localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
	srv := smtp.NewServer(u)
	srv.Domain = "smarthost.tls25.example"
	cert, key, _ := certFiles(t, t.TempDir())
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAnyClientCert}
	srv.ErrorLog = nopLogger{}
	if implicit {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *tls25Upstream) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &tls25Session{u: u, c: c}, nil
}

type tls25Session struct {
	u *tls25Upstream
	c *smtp.Conn
}

func (s *tls25Session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *tls25Session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *tls25Session) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	_, isTLS := s.c.TLSConnectionState()
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	s.u.mails++
	if isTLS {
		s.u.tlsM++
	}
	return nil
}
func (s *tls25Session) Reset()        {}
func (s *tls25Session) Logout() error { return nil }

// TestTLS25MayFallsBackWhenServerRefusesHandshake: at the "may" level
// (--client-tls) a server whose TLS handshake fails gets the mail in plain
// text (docs/tls.md), as when it wants a client certificate the relay does
// not have. With TLS 1.3 the server says so with an alert that the relay
// reads only after its side of the handshake, at the EHLO that follows;
// the relay took it for an EHLO failure and deferred the mail for good
// ("upstream ehlo failed: remote error: tls: certificate required").
func TestTLS25MayFallsBackWhenServerRefusesHandshake(t *testing.T) {
	t.Parallel()
	u := newTLS25Upstream(t, false)
	r := startRelay(t, "127.0.0.1", "--as-proxy", u.addr, "--client-tls", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx, err := sendMail(r.addr(), "a@example.org", []string{outsideRcpt}, message("tls25 client cert"))
	if err != nil {
		t.Fatalf("sending through a relay at --client-tls to a server that wants a client certificate: %v (MAIL %q)", err, tx.Mail)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mails != 1 || u.tlsM != 0 {
		t.Errorf("upstream got %d messages, %d over TLS; want one, in plain text", u.mails, u.tlsM)
	}
}

// TestTLS25ImplicitTLSRefusedHandshakeNamed: a port-465 smarthost that
// refuses the relay's handshake (TLS 1.3, no client certificate) is a
// failed TLS handshake in the reply the client hears and in the log, not
// "upstream greeting failed", which sent the administrator looking at the
// server's banner.
func TestTLS25ImplicitTLSRefusedHandshakeNamed(t *testing.T) {
	t.Parallel()
	u := newTLS25Upstream(t, true)
	r := startRelay(t, "127.0.0.1", "--as-proxy", u.addr, "--client-tls-connection", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx, err := sendMail(r.addr(), "a@example.org", []string{outsideRcpt}, message("tls25 implicit"))
	if err == nil || !strings.HasPrefix(tx.Mail.String(), "451 4.4.1 upstream tls handshake failed: ") {
		t.Errorf("MAIL through a relay whose port-465 smarthost refuses its handshake: %q, %v; want 451 4.4.1 upstream tls handshake failed", tx.Mail, err)
	}
}
