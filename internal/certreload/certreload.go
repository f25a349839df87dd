// Package certreload serves a TLS server certificate and reloads it when its
// files change, so that a renewed certificate is used without a restart.
//
// A certificate that fails to load leaves the old one in force: a renewal
// caught half-written, or a key that does not match, must not take the
// listeners down. The failure is logged once per version of the files, and
// Reload returns it to a caller that asked (SIGHUP).
package certreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// checkEvery bounds how often GetCertificate looks at the files, so that a
// busy server does not stat them on every handshake.
const checkEvery = 5 * time.Second

// Reloader holds the certificate. Its methods are safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	modTime stamp // of the files the certificate came from
	failed  stamp // of the files that last failed to load, logged
	checked time.Time
}

// New loads the certificate in certFile and the key in keyFile (keyFile ""
// means the one PEM file holds both, as E-MailRelay allows). log, if not
// nil, hears about certificates that fail to reload.
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if keyFile == "" {
		keyFile = certFile
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Reloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// stamp is the modification times of the certificate and key files; a
// zero time for a file that cannot be read.
type stamp [2]time.Time

// gone reports a file that could not be read.
func (s stamp) gone() bool { return s[0].IsZero() || s[1].IsZero() }

func (s stamp) equal(o stamp) bool { return s[0].Equal(o[0]) && s[1].Equal(o[1]) }

// stamp returns the files' modification times now.
func (l *Reloader) stamp() stamp {
	var s stamp
	for i, f := range []string{l.certFile, l.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			s[i] = fi.ModTime()
		}
	}
	return s
}

// Reload loads the files now. On an error the certificate in force stays.
func (l *Reloader) Reload() error {
	mt := l.stamp()
	c, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed = mt
		return fmt.Errorf("TLS certificate %s (key %s): %w", l.certFile, l.keyFile, err)
	}
	l.cert, l.modTime, l.failed = &c, mt, stamp{}
	return nil
}

// Refresh is Reload on SIGHUP: it logs the outcome as the watch in
// GetCertificate does, so that an operator who renewed the certificate and
// signalled the relay reads that it took (or why not). Files that did not
// change since the certificate in force was loaded are reloaded quietly.
func (l *Reloader) Refresh() {
	l.mu.Lock()
	loaded := l.modTime
	l.mu.Unlock()
	if err := l.Reload(); err != nil {
		l.log.Error("TLS certificate not reloaded; the old one stays in force", "err", err)
		return
	}
	l.mu.Lock()
	changed := !l.modTime.equal(loaded)
	l.mu.Unlock()
	if changed {
		l.log.Info("TLS certificate reloaded", "file", l.certFile)
	}
}

// GetCertificate is tls.Config.GetCertificate: the certificate in force,
// reloaded first if the files changed since it was loaded.
func (l *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	stale := l.now().Sub(l.checked) > checkEvery
	if stale {
		l.checked = l.now()
	}
	cert, mt, failed := l.cert, l.modTime, l.failed
	l.mu.Unlock()
	if !stale {
		return cert, nil
	}
	// Any other time is a change, an older one too (a certificate put
	// back from a backup, or copied with its time kept); no time is a
	// file gone for a moment (a symlink being replaced).
	now := l.stamp()
	if now.gone() || now.equal(mt) || now.equal(failed) {
		return cert, nil // unchanged, or this version failed and was logged
	}
	if err := l.Reload(); err != nil {
		l.log.Error("TLS certificate not reloaded; the old one stays in force", "err", err)
		return cert, nil
	}
	l.log.Info("TLS certificate reloaded", "file", l.certFile)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cert, nil
}

// ServerConfig is the TLS configuration for the SMTP and POP3 listeners
// with the certificate in certFile and keyFile, served by the Reloader it
// also returns; nil, nil without a certificate.
func ServerConfig(certFile, keyFile string, log *slog.Logger) (*tls.Config, *Reloader, error) {
	if certFile == "" {
		return nil, nil, nil
	}
	l, err := New(certFile, keyFile, log)
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

// AskClientCerts makes the server ask clients for a certificate
// (Postfix's smtpd_tls_ask_ccert), without requiring or verifying one at
// the handshake: the relay policy reads its fingerprint
// (permit_tls_clientcerts) and, with caFile (smtpd_tls_CAfile), whether
// it verifies (permit_tls_all_clientcerts), for which it returns the
// pool. With require (E-MailRelay's --server-tls-verify, Postfix's
// smtpd_tls_req_ccert) a handshake without a certificate that caFile's
// CAs signed fails. caFile "<default>" is the system's CAs. A nil cfg
// (no certificate) asks nothing.
func AskClientCerts(cfg *tls.Config, ask bool, caFile string, require bool) (*x509.CertPool, error) {
	if cfg == nil || !ask && caFile == "" && !require {
		return nil, nil
	}
	cfg.ClientAuth = tls.RequestClientCert
	if caFile == "" {
		if require {
			return nil, errors.New("tls.require_client_cert needs the CAs that sign the clients' certificates")
		}
		return nil, nil
	}
	var pool *x509.CertPool
	if caFile == "<default>" {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("the system's CAs: %w", err)
		}
	} else {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
	}
	if require {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	return pool, nil
}
