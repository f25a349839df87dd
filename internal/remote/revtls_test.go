package remote_test

import (
	"context"
	"crypto/tls"
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
	// offer greets and offers STARTTLS.
	offer := func(s *scriptConn) {
		s.send("220 script.test ESMTP")
		s.expect("EHLO localhost")
		s.send("250-script.test", "250 STARTTLS")
	}
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
