package remote

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// er25Cert makes a self-signed server certificate for cn, with dnsNames
// as its subject alternative names (none: a CN-only certificate, as
// "openssl req -x509 -subj /CN=NAME" makes), and writes it to a PEM file.
func er25Cert(t *testing.T, cn string, dnsNames ...string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// er25Handshake runs a TLS handshake between a server showing cert and a
// client configured by tc, and returns the client's error.
func er25Handshake(t *testing.T, cert tls.Certificate, tc *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		b, err := ln.Accept()
		if err != nil {
			return
		}
		s := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}})
		s.SetDeadline(time.Now().Add(10 * time.Second))
		s.Handshake()
		s.Close()
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := tls.Client(a, tc)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.Handshake()
}

// TestER25VerifyNameCommonName: E-MailRelay's --client-tls-verify-name
// checks the name "within the remote SMTP server's certificate", its
// common name, so a smarthost with a self-signed CN-only certificate
// ("openssl req -x509 -subj /CN=mail.example") passes with
// "--client-tls-verify ca.pem --client-tls-verify-name mail.example".
// relaykeeper failed every handshake with it ("x509: certificate relies on
// legacy Common Name field"), and the mail stayed queued. The common name
// counts only for a certificate without subject alternative names (RFC
// 6125 section 6.4.4), and the chain is verified as before.
func TestER25VerifyNameCommonName(t *testing.T) {
	cnOnly, cnFile := er25Cert(t, "mail.example")
	withSAN, sanFile := er25Cert(t, "mail.example", "other.example")
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		ca     string
		verify string
		ok     bool
	}{
		{"CN-only, the CN", cnOnly, cnFile, "mail.example", true},
		{"CN-only, the CN in capitals", cnOnly, cnFile, "MAIL.example", true},
		{"CN-only, another name", cnOnly, cnFile, "wrong.example", false},
		{"SANs: the CN does not count", withSAN, sanFile, "mail.example", false},
		{"SANs: a SAN", withSAN, sanFile, "other.example", true},
		{"CN-only, not signed by the CA file", cnOnly, sanFile, "mail.example", false},
	} {
		_, c, err := TLSSettings{Required: true, Verify: tc.ca, VerifyName: tc.verify}.Config("127.0.0.1:587", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := er25Handshake(t, tc.cert, c); (err == nil) != tc.ok {
			t.Errorf("%s: verify name %s: handshake = %v; want ok %v", tc.name, tc.verify, err, tc.ok)
		}
	}
}
