package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// TLSSettings are the outbound client's TLS switches, as the
// configuration holds them.
type TLSSettings struct {
	// Opportunistic is --client-tls: STARTTLS when offered.
	Opportunistic bool
	// Required is --client-tls-required: never send without TLS.
	Required bool
	// Implicit is --client-tls-connection: TLS from the first byte.
	Implicit bool
	// Verify is --client-tls-verify: "" verifies only when the relay
	// sends credentials; "<default>" always against the system's roots;
	// "<none>" never; anything else is a CA file.
	Verify string
	// ServerName is the name to send (SNI) and verify; the upstream's
	// host by default.
	ServerName string
	// VerifyName, if set, is the name the certificate must be valid for
	// instead of ServerName, which is still sent (E-MailRelay's
	// --client-tls-verify-name). It counts only where the certificate
	// is verified.
	VerifyName string
	// Certificate and Key are the client certificate, if any; the key
	// is in the certificate's file when Key is "".
	Certificate, Key string
}

// VerifyOff reports the administrator's explicit opt-out from
// certificate verification (--client-tls-verify=<none>).
func (s TLSSettings) VerifyOff() bool {
	switch s.Verify {
	case "<none>", "none", "no":
		return true
	}
	return false
}

// Config turns the settings into the client's TLS mode and configuration
// for upstream (host:port). credentials says the relay logs in to the
// smarthost: then TLS is required and the certificate verified, unless
// the administrator says otherwise (<none>).
func (s TLSSettings) Config(upstream string, credentials bool) (TLSMode, *tls.Config, error) {
	mode := TLSNone
	switch {
	case s.Implicit:
		mode = TLSImplicit
	case s.Required:
		mode = TLSRequired
	case s.Opportunistic:
		mode = TLSOpportunistic
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(upstream); err == nil {
			tc.ServerName = host
		}
	}
	switch {
	case s.VerifyOff():
		// Explicitly asked for: encrypt, but accept any certificate,
		// credentials or not.
		tc.InsecureSkipVerify = true
	case s.Verify == "":
		// As Postfix's "may" and "encrypt": encrypt, but accept any
		// certificate; an active attacker can read, a passive one
		// cannot. Not with a password to send: that goes only to a
		// server that proves its name.
		tc.InsecureSkipVerify = !credentials
	case s.Verify == "<default>" || s.Verify == "default":
		// The system's roots, and the server name.
	default:
		pem, err := os.ReadFile(s.Verify)
		if err != nil {
			return 0, nil, &SettingError{"tls.client_verify", err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return 0, nil, &SettingError{"tls.client_verify", fmt.Errorf("%s: no PEM certificates in it", s.Verify)}
		}
		tc.RootCAs = pool
	}
	if s.VerifyName != "" && !tc.InsecureSkipVerify {
		verifyName(tc, s.VerifyName)
	}
	if s.Certificate != "" {
		key := s.Key
		if key == "" {
			key = s.Certificate
		}
		c, err := tls.LoadX509KeyPair(s.Certificate, key)
		if err != nil {
			// Named as the server's certificate is (certreload).
			return 0, nil, &SettingError{"tls.client_certificate", fmt.Errorf("TLS certificate %s (key %s): %w", s.Certificate, key, err)}
		}
		tc.Certificates = []tls.Certificate{c}
	}
	if credentials && (mode == TLSNone && !loopback(upstream) || mode == TLSOpportunistic) {
		// A password goes only over TLS, and (unless <none> says
		// otherwise) to a server that proves its name: a smarthost
		// without STARTTLS (or one an attacker stripped it from) gets
		// none, as a transport with auth gets "verify". <none> turns
		// off the certificate check, never the encryption (Postfix's
		// smtp_sasl_security_options = noplaintext). A smarthost on
		// this host, with no TLS asked for, gets it as E-MailRelay and
		// Postfix send it: it crosses no network.
		mode = TLSRequired
	}
	if mode == TLSNone {
		// Named by the setting given, so that its file and line are.
		for _, k := range []struct {
			key string
			set bool
		}{{"tls.client_verify", s.Verify != "" && !s.VerifyOff()}, {"tls.client_certificate", s.Certificate != ""}, {"tls.client_server_name", s.ServerName != ""}} {
			if k.set {
				return 0, nil, &SettingError{k.key, errors.New("client TLS settings given without --client-tls, --client-tls-required or --client-tls-connection (tls.client, tls.client_required or tls.client_connection)")}
			}
		}
	}
	return mode, tc, nil
}

// verifyName makes tc verify the server's certificate chain for name
// rather than for the name it sends (SNI): Go verifies only ServerName, so
// its own check is turned off and done here instead, with the same roots.
// A certificate without subject alternative names is checked by its
// common name, as E-MailRelay's --client-tls-verify-name checks it (and
// RFC 6125 section 6.4.4 allows): Go ignores the common name, so a
// self-signed "openssl req -x509 -subj /CN=NAME" certificate never passed.
func verifyName(tc *tls.Config, name string) {
	roots := tc.RootCAs
	tc.InsecureSkipVerify = true
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
			return err
		}
		err := leaf.VerifyHostname(name)
		if err != nil && len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 && len(leaf.URIs) == 0 &&
			len(leaf.EmailAddresses) == 0 && leaf.Subject.CommonName != "" && strings.EqualFold(leaf.Subject.CommonName, name) {
			return nil
		}
		return err
	}
}

// loopback reports whether upstream (host:port) is a loopback address.
// Only an address: a name, even "localhost", is what the resolver makes
// of it, which may be a DNS answer from elsewhere.
func loopback(upstream string) bool {
	host, _, err := net.SplitHostPort(upstream)
	if err != nil {
		host = upstream
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// SettingError is a file a TLS setting names that cannot be used, with the
// setting's configuration key ("tls.client_verify"), so that the error
// can name where it was set.
type SettingError struct {
	Key string
	Err error
}

func (e *SettingError) Error() string     { return e.Key + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error     { return e.Err }
func (e *SettingError) ConfigKey() string { return e.Key }

// errNoStartTLS is why a session that must be encrypted ends when the
// server offers no STARTTLS, naming what asks for TLS: the login, else
// the settings (--client-tls-required, a transport's tls level).
func errNoStartTLS(login bool) error {
	if login {
		return errors.New("server does not offer STARTTLS and TLS is required to log in (a password goes only over TLS)")
	}
	return errors.New("server does not offer STARTTLS and TLS is required (--client-tls-required, or the transport's tls = encrypt, verify or secure)")
}
