package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/relaykeeper/relaykeeper/internal/certreload"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// serverTLS is the TLS configuration for the SMTP listeners, or nil when
// no certificate is configured.
func serverTLS(cfg *config.TLS, log *slog.Logger) (*tls.Config, *certreload.Reloader, error) {
	if cfg.Certificate == "" {
		return nil, nil, nil
	}
	l, err := certreload.New(cfg.Certificate, cfg.Key, log)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{
		GetCertificate: l.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		// Outlook and other Schannel clients fail STARTTLS against Go
		// servers that issue session tickets; nothing needs them here.
		SessionTicketsDisabled: true,
	}, l, nil
}

// clientVerifyOff reports the administrator's explicit opt-out from
// certificate verification (--client-tls-verify=<none>).
func clientVerifyOff(cfg *config.TLS) bool {
	switch cfg.ClientVerify {
	case "<none>", "none", "no":
		return true
	}
	return false
}

// clientTLS turns the configuration into the outbound client's TLS mode and
// settings. credentials says the relay logs in to the smarthost: then its
// certificate is verified unless the administrator says otherwise.
func clientTLS(cfg *config.TLS, upstream string, credentials bool) (remote.TLSMode, *tls.Config, error) {
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
	case "<none>", "none", "no":
		// Explicitly asked for: encrypt, but accept any certificate,
		// credentials or not.
		tc.InsecureSkipVerify = true
	case "":
		// As Postfix's "may" and "encrypt": encrypt, but accept any
		// certificate; an active attacker can read, a passive one
		// cannot. Not with a password to send: that goes only to a
		// server that proves its name.
		tc.InsecureSkipVerify = !credentials
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
	if mode == remote.TLSNone && ((cfg.ClientVerify != "" && !clientVerifyOff(cfg)) || cfg.ClientCertificate != "") {
		return 0, nil, errors.New("client TLS settings given without --client-tls, --client-tls-required or --client-tls-connection")
	}
	return mode, tc, nil
}
