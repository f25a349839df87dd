package pop3

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// testAuth is a password table.
type testAuth map[string]string

func (a testAuth) Verify(user, pass string) bool {
	p, ok := a[user]
	return ok && p == pass
}

func (a testAuth) APOPSecret(user string) (string, bool) {
	p, ok := a[user]
	return p, ok
}

var _ Authenticator = testAuth{}

// arrivals makes each test message arrive a second after the one before,
// so that ids, and so message numbers, follow the order of creation.
var arrivals atomic.Int64

// addMessage stores a Ready message in the spool at dir and returns its id.
func addMessage(t *testing.T, dir, content string) string {
	t.Helper()
	sp, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sp.Create(time.Unix(1.8e9+arrivals.Add(1), 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{From: "sender@example.com", Client: "127.0.0.1:1", Arrival: time.Now(),
		Recipients: []spool.Recipient{{Addr: "alice@example.com", Status: spool.Pending}}}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// startServer runs a Server on a loopback port until the test ends.
func startServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.FailDelay == 0 {
		opts.FailDelay = -1
	}
	srv := New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// client is a test POP3 connection.
type client struct {
	t *testing.T
	*textproto.Conn
	nc       net.Conn
	greeting string
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, Conn: textproto.NewConn(nc), nc: nc}
	t.Cleanup(func() { c.Close() })
	if c.greeting, err = c.ReadLine(); err != nil || !strings.HasPrefix(c.greeting, "+OK ") {
		t.Fatalf("greeting %q, %v", c.greeting, err)
	}
	return c
}

// cmd sends a command and returns the first line of the reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	if err := c.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	reply, err := c.ReadLine()
	if err != nil {
		c.t.Fatalf("reply to %q: %v", line, err)
	}
	return reply
}

// ok sends a command that must succeed.
func (c *client) ok(line string) string {
	c.t.Helper()
	reply := c.cmd(line)
	if !strings.HasPrefix(reply, "+OK") {
		c.t.Fatalf("%s: %q; want +OK", line, reply)
	}
	return reply
}

// multi sends a command with a multi-line reply and returns its lines,
// dot-stuffing undone.
func (c *client) multi(line string) []string {
	c.t.Helper()
	c.ok(line)
	lines, err := c.ReadDotLines()
	if err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	return lines
}

func (c *client) login(user, pass string) {
	c.t.Helper()
	c.ok("USER " + user)
	c.ok("PASS " + pass)
}

// closed reports whether the server has closed the connection.
func (c *client) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.ReadLine()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// testCert makes a self-signed certificate for 127.0.0.1 and localhost and
// returns the server's TLS configuration and the certificate's PEM file.
func testCert(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return cfg, path
}
