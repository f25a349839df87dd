package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// certLoader serves the server certificate and reloads it when its files
// change, so that a renewed certificate is used without a restart. A file
// that fails to load keeps the old certificate in force.
type certLoader struct {
	certFile, keyFile string

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertLoader(certFile, keyFile string) (*certLoader, error) {
	if keyFile == "" {
		keyFile = certFile // one PEM file holding both, as E-MailRelay allows
	}
	l := &certLoader{certFile: certFile, keyFile: keyFile}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *certLoader) newest() time.Time {
	var t time.Time
	for _, f := range []string{l.certFile, l.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

func (l *certLoader) load() error {
	mt := l.newest()
	c, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s (key %s): %w", l.certFile, l.keyFile, err)
	}
	l.mu.Lock()
	l.cert, l.modTime = &c, mt
	l.mu.Unlock()
	return nil
}

// get is tls.Config.GetCertificate. It looks at the files at most every few
// seconds, so a busy server does not stat them per handshake.
func (l *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	stale := time.Since(l.checked) > 5*time.Second
	if stale {
		l.checked = time.Now()
	}
	cert, mt := l.cert, l.modTime
	l.mu.Unlock()
	if stale && l.newest().After(mt) {
		if err := l.load(); err != nil {
			return cert, nil // keep serving the old one; reload logged by the caller's next SIGHUP
		}
		l.mu.Lock()
		cert = l.cert
		l.mu.Unlock()
	}
	return cert, nil
}

// serverTLS is the TLS configuration for the SMTP listeners, or nil when
// no certificate is configured.
func serverTLS(cfg *config.TLS) (*tls.Config, *certLoader, error) {
	if cfg.Certificate == "" {
		return nil, nil, nil
	}
	l, err := newCertLoader(cfg.Certificate, cfg.Key)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{
		GetCertificate: l.get,
		MinVersion:     tls.VersionTLS12,
		// Outlook and other Schannel clients fail STARTTLS against Go
		// servers that issue session tickets; nothing needs them here.
		SessionTicketsDisabled: true,
	}, l, nil
}

// clientTLS turns the configuration into the outbound client's TLS mode and
// settings.
func clientTLS(cfg *config.TLS, upstream string) (remote.TLSMode, *tls.Config, error) {
	mode := remote.TLSNone
	switch {
	case cfg.ClientConnection:
		mode = remote.TLSImplicit
	case cfg.ClientRequired:
		mode = remote.TLSRequired
	case cfg.Client:
		mode = remote.TLSOpportunistic
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ClientServerName}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(upstream); err == nil {
			tc.ServerName = host
		}
	}
	switch cfg.ClientVerify {
	case "":
		// As Postfix's "may" and "encrypt": encrypt, but accept any
		// certificate; an active attacker can read, a passive one cannot.
		tc.InsecureSkipVerify = true
	case "<default>", "default":
		// The system's roots, and the server name.
	default:
		pem, err := os.ReadFile(cfg.ClientVerify)
		if err != nil {
			return 0, nil, fmt.Errorf("--client-tls-verify: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return 0, nil, fmt.Errorf("--client-tls-verify %s: no PEM certificates in it", cfg.ClientVerify)
		}
		tc.RootCAs = pool
	}
	if cfg.ClientCertificate != "" {
		key := cfg.ClientKey
		if key == "" {
			key = cfg.ClientCertificate
		}
		c, err := tls.LoadX509KeyPair(cfg.ClientCertificate, key)
		if err != nil {
			return 0, nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	if mode == remote.TLSNone && (cfg.ClientVerify != "" || cfg.ClientCertificate != "") {
		return 0, nil, errors.New("client TLS settings given without --client-tls, --client-tls-required or --client-tls-connection")
	}
	return mode, tc, nil
}
