package remote_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// newScripts is newScript for several connections, served in turn: the
// first by serves[0], the next by serves[1], and so on. It returns the
// address and a count of the connections accepted.
func newScripts(t *testing.T, serves ...func(s *scriptConn)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, serve := range serves {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			serve(&scriptConn{t: t, nc: nc})
			nc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), &n
}

// greet sends the greeting, and answers EHLO with one extension.
func (s *scriptConn) greet(ext string) {
	s.send("220 script.test ESMTP")
	s.expect("EHLO [127.0.0.1]")
	s.send("250-script.test", "250 "+ext)
}

// noLogin is credentials that are never used: the sessions that have
// them end before AUTH.
type noLogin struct{}

func (noLogin) Client([]string) (sasl.Client, error) { return nil, errors.New("no login here") }

// mayTLS is the TLS configuration of Postfix's "may" level, as
// TLSSettings.Config makes it for --client-tls: any certificate.
var mayTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}

// TestRevTLSMayPlainFallback: at "may" (TLSOpportunistic, any certificate)
// a server whose STARTTLS is refused goes on in plain text in the same
// session, and one whose handshake fails is dialled again without TLS, as
// Postfix's smtp_tls_security_level = may does. "encrypt" (TLSRequired) and
// an opportunistic client that verifies certificates do neither.
func TestRevTLSMayPlainFallback(t *testing.T) {
	opts := func(mode remote.TLSMode, tc *tls.Config) remote.Options {
		return remote.Options{TLS: mode, TLSConfig: tc, ConnectTimeout: 2 * time.Second, ResponseTimeout: 2 * time.Second}
	}
	offer := func(s *scriptConn) { s.greet("STARTTLS") }
	refused := func(s *scriptConn) {
		offer(s)
		s.expect("STARTTLS")
		s.send("454 4.7.0 TLS not available due to local problem")
	}
	brokenHandshake := func(s *scriptConn) {
		offer(s)
		s.expect("STARTTLS")
		s.send("220 2.0.0 Ready to start TLS")
		b := make([]byte, 4096)
		s.nc.Read(b) // the ClientHello
		s.nc.Write([]byte("this is not a TLS record\r\n"))
	}
	plainAgain := func(s *scriptConn) {
		offer(s)
		s.expect("QUIT")
		s.send("221 bye")
	}

	for _, tc := range []struct {
		name   string
		serves []func(*scriptConn)
	}{
		// The same session goes on.
		{"refused, may", []func(*scriptConn){func(s *scriptConn) { refused(s); s.expect("QUIT"); s.send("221 bye") }}},
		// A second session, in plain text.
		{"handshake fails, may", []func(*scriptConn){brokenHandshake, plainAgain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, n := newScripts(t, tc.serves...)
			c, err := remote.Dial(context.Background(), addr, opts(remote.TLSOpportunistic, mayTLS))
			if err != nil {
				t.Fatalf("Dial at may: %v; want a session in plain text", err)
			}
			if c.TLS() {
				t.Errorf("TLS() = true; want the session in plain text")
			}
			c.Quit()
			if got := n.Load(); got != int32(len(tc.serves)) {
				t.Errorf("%d connections; want %d", got, len(tc.serves))
			}
		})
	}
	for _, tc := range []struct {
		name  string
		serve func(*scriptConn)
		mode  remote.TLSMode
		tls   *tls.Config
		auth  remote.Authenticator
		stage string
	}{
		{"refused, encrypt", refused, remote.TLSRequired, mayTLS, nil, "starttls"},
		{"handshake fails, encrypt", brokenHandshake, remote.TLSRequired, mayTLS, nil, "tls handshake"},
		{"handshake fails, may verifying", brokenHandshake, remote.TLSOpportunistic, &tls.Config{}, nil, "tls handshake"},
		// Credentials never go in plain text (--client-tls-verify
		// <none> leaves may as it is).
		{"refused, may with credentials", refused, remote.TLSOpportunistic, mayTLS, noLogin{}, "starttls"},
		{"handshake fails, may with credentials", brokenHandshake, remote.TLSOpportunistic, mayTLS, noLogin{}, "tls handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, n := newScripts(t, tc.serve, plainAgain)
			o := opts(tc.mode, tc.tls)
			o.Auth = tc.auth
			_, err := remote.Dial(context.Background(), addr, o)
			var re *remote.Error
			if !errors.As(err, &re) || re.Stage != tc.stage || !re.Temporary() {
				t.Errorf("Dial = %v; want a temporary remote.Error at %s", err, tc.stage)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d connections; want 1: no plain-text retry", got)
			}
		})
	}
}

// passwordLogin is a client line with a password: CRAM-MD5 when offered
// (a made-up digest: the script checks none), else PLAIN.
type passwordLogin struct{}

func (passwordLogin) Client(mechs []string) (sasl.Client, error) {
	for _, m := range mechs {
		if m == "CRAM-MD5" {
			return cramStub{}, nil
		}
	}
	for _, m := range mechs {
		if m == "PLAIN" {
			return sasl.NewPlainClient("", "alice", "pw"), nil
		}
	}
	return nil, errors.New("no mechanism")
}

type cramStub struct{}

func (cramStub) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }
func (cramStub) Next([]byte) ([]byte, error)    { return []byte("alice 0123"), nil }

// TestRevTLSCramFallsBackToPlain: a server that offers CRAM-MD5 but cannot
// do it for the account (its passwords are hashed: Dovecot answers 535)
// gets one more try with PLAIN, as E-MailRelay's client tries the next
// mechanism; the relay used to stop at the 535, and every message waited.
// Only CRAM-MD5 falls back: PLAIN and LOGIN check the same password, and
// every extra failure counts against the relay at the server.
func TestRevTLSCramFallsBackToPlain(t *testing.T) {
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))
	for _, tc := range []struct {
		name  string
		plain string // the reply to AUTH PLAIN, "" if it must not come
		ok    bool
	}{
		{"PLAIN works", "235 2.7.0 Authentication successful", true},
		{"PLAIN fails too", "535 5.7.8 Error: authentication failed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := newScript(t, func(s *scriptConn) {
				s.greet("AUTH CRAM-MD5 PLAIN")
				s.expect("AUTH CRAM-MD5")
				s.send("334 PDEyMzQ1QHNjcmlwdC50ZXN0Pg==")
				s.read(1)
				s.send("535 5.7.8 Error: authentication failed")
				s.expect(plain)
				s.send(tc.plain)
				if tc.ok {
					s.expect("QUIT")
					s.send("221 bye")
				}
			})
			c, err := remote.Dial(context.Background(), addr, remote.Options{Auth: passwordLogin{},
				ConnectTimeout: 2 * time.Second, ResponseTimeout: 2 * time.Second})
			var re *remote.Error
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Dial = %v; want logged in with PLAIN after CRAM-MD5 failed", err)
			case tc.ok:
				c.Quit()
			case !errors.As(err, &re) || re.Stage != "auth" || re.Reply.Code != 535:
				t.Errorf("Dial = %v; want the 535 to PLAIN", err)
			}
		})
	}
}
