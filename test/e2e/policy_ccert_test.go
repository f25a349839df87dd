package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// testCert is a certificate and its key; parent signs it (nil:
// self-signed).
func testCert(t *testing.T, cn string, ca bool, parent *tls.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: ca}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// postfixFingerprint is a certificate's SHA-256 fingerprint as Postfix
// prints it.
func postfixFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// TestClientCertificates: Postfix's relaying by client certificate. With
// tls.ask_client_cert, a client outside mynetworks whose certificate's
// fingerprint is in relay_clientcerts may relay (permit_tls_clientcerts),
// as may one whose certificate a CA in tls.client_ca signed
// (permit_tls_all_clientcerts); check_ccert_access refuses a listed one;
// any other client, with a certificate or without, may not relay.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, both := certFiles(t, dir)
	ca := testCert(t, "Test CA", true, nil)
	listed := testCert(t, "listed.example", false, nil)
	signed := testCert(t, "signed.example", false, &ca)
	stranger := testCert(t, "stranger.example", false, nil)
	banned := testCert(t, "banned.example", false, &ca)
	caFile := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate[0]})), 0o644)
	certs := writeFile(t, dir, "relay_clientcerts", postfixFingerprint(listed.Certificate[0])+" listed.example\n", 0o644)
	ccert := writeFile(t, dir, "ccert_access", postfixFingerprint(banned.Certificate[0])+" REJECT stolen laptop\n", 0o644)
	cfg := writeConfig(t, ccertConfig(both, caFile, fmt.Sprintf(`relay_clientcerts = ["hash:%s"]
relay_restrictions = ["check_ccert_access hash:%s", "permit_mynetworks", "permit_tls_clientcerts", "permit_tls_all_clientcerts", "reject_unauth_destination"]
`, certs, ccert)))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want string
	}{
		{"listed", &listed, "250 "},
		{"signed by the CA", &signed, "250 "},
		// Postfix names the certificate's CommonName in the reply
		// (check_ccert_access: reply_name is peer_CN), not the
		// fingerprint it looked up.
		{"banned", &banned, "554 5.7.1 <banned.example>: Client certificate rejected: stolen laptop"},
		{"unknown", &stranger, "554 5.7.1 <x@elsewhere.example>: Relay access denied"},
		{"none", nil, "554 5.7.1 <x@elsewhere.example>: Relay access denied"},
	} {
		c, tconn := startTLSWith(t, r.addr(), "127.0.0.2", tc.cert)
		if err := tconn.Handshake(); err != nil {
			t.Fatalf("%s: handshake: %v", tc.name, err)
		}
		c.conn, c.r = tconn, newReader(tconn)
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
		got, _ := c.cmd("RCPT TO:<x@elsewhere.example>")
		if !strings.HasPrefix(got.String(), tc.want) {
			t.Errorf("%s: RCPT = %q; want %q", tc.name, got, tc.want)
		}
		c.Close()
	}
}

// TestClientTLSCertificateSwitch: E-MailRelay's --client-tls-certificate
// makes the relay present its own certificate to the upstream. The
// upstream (relaykeeper) relays only for clients whose certificate its CA
// signed (permit_tls_all_clientcerts): the proxy with the switch gets the
// message through, the proxy without it is refused.
func TestClientTLSCertificateSwitch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, upPem := certFiles(t, dir)
	ca := testCert(t, "Test CA", true, nil)
	mine := testCert(t, "relay.example", false, &ca)
	caFile := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate[0]})), 0o644)
	key, err := x509.MarshalPKCS8PrivateKey(mine.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	minePem := writeFile(t, dir, "relay.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))+
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mine.Certificate[0]})), 0o600)
	cfg := writeConfig(t, ccertConfig(upPem, caFile, `relay_restrictions = ["permit_tls_all_clientcerts", "reject_unauth_destination"]
`))
	up := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)

	for _, tc := range []struct {
		cert []string
		want string
	}{
		{[]string{"--client-tls-certificate", minePem}, "250 "},
		{nil, "554 5.7.1"},
	} {
		args := append([]string{"--as-proxy", up.addr(), "--client-tls", "--client-tls-required", "--client-tls-verify", upPem,
			"--interface", "127.0.0.1", "--spool-dir", t.TempDir()}, tc.cert...)
		r := startRelay(t, "127.0.0.1", args...)
		tx, _ := sendMail(r.addr(), "alice@example.org", []string{outsideRcpt}, message("with a client certificate"))
		got := tx.Final.String()
		if tx.Final.code() == 0 && len(tx.Rcpt) > 0 {
			got = tx.Rcpt[0].String()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v: %q (transaction %+v); want %q", tc.cert, got, tx, tc.want)
		}
	}
}

// ccertConfig is a relay that offers STARTTLS with the certificate in pem,
// asks clients for theirs and verifies them against caFile, trusts only
// 127.0.0.9, and adds policy to its [policy] section.
func ccertConfig(pem, caFile, policy string) string {
	return fmt.Sprintf("[tls]\nserver = true\ncertificate = %q\nask_client_cert = true\nclient_ca = %q\n[policy]\nmynetworks = [\"127.0.0.9/32\"]\n%s",
		pem, caFile, policy)
}

// TestServerTLSVerify: E-MailRelay's --server-tls-verify (Postfix's
// smtpd_tls_req_ccert): a client's STARTTLS handshake succeeds only with a
// certificate that the CA file's CAs signed; without one, or with another,
// it fails, as E-MailRelay's does. Without a CA it does not start.
func TestServerTLSVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, both := certFiles(t, dir)
	ca := testCert(t, "Test CA", true, nil)
	signed := testCert(t, "client.example", false, &ca)
	stranger := testCert(t, "stranger.example", false, nil)
	caFile := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate[0]})), 0o644)
	r := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", both, "--server-tls-verify", caFile,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{{"signed", &signed, true}, {"stranger", &stranger, false}, {"none", nil, false}} {
		c, tconn := startTLSWith(t, r.addr(), "127.0.0.1", tc.cert)
		err := tconn.Handshake()
		if err == nil {
			// TLS 1.3: the server's verdict on the client's certificate
			// comes with the first read.
			_, err = tconn.Write([]byte("EHLO client.test\r\n"))
			if err == nil {
				_, err = tconn.Read(make([]byte, 512))
			}
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake and EHLO: %v; want success %v", tc.name, err, tc.ok)
		}
		c.Close()
	}
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--server-tls", "--server-tls-certificate", both,
		"--spool-dir", t.TempDir(), "--config", writeConfig(t, "[tls]\nrequire_client_cert = true\n"))
	if code == 0 || !strings.Contains(errOut, "tls.require_client_cert") {
		t.Errorf("require_client_cert without a CA: exit %d, %q; want refused", code, errOut)
	}
}

// startTLSWith dials addr from the local address from, says EHLO and
// STARTTLS, and returns the TLS client over the connection, presenting
// cert if not nil, its handshake not yet done.
func startTLSWith(t *testing.T, addr, from string, cert *tls.Certificate) (*smtpClient, *tls.Conn) {
	t.Helper()
	c := mustDial(t, addr, from)
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "220", "STARTTLS")
	conf := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	tconn := tls.Client(c.conn, conf)
	tconn.SetDeadline(time.Now().Add(10 * time.Second))
	return c, tconn
}

// TestClientTLSVerifyName: E-MailRelay's --client-tls-verify-name checks
// the smarthost's certificate for that name rather than for the address
// connected to: the upstream's certificate names relay.test (and
// 127.0.0.1); verifying relay.test gets the message through, verifying
// other.test fails though the address matches; without
// --client-tls-verify it does not start.
func TestClientTLSVerifyName(t *testing.T) {
	t.Parallel()
	_, _, upPem := certFiles(t, t.TempDir())
	up := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", upPem,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	// With --client-tls alone (Postfix's may), a certificate that fails
	// the name must not be taken for a failed handshake that may fall
	// back to plain text.
	for _, tc := range []struct{ name, level, want string }{{"relay.test", "--client-tls-required", "250 "},
		{"other.test", "--client-tls-required", "4"}, {"other.test", "--client-tls", "4"}} {
		r := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), tc.level, "--client-tls-verify", upPem,
			"--client-tls-verify-name", tc.name, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
		tx, _ := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("verify "+tc.name))
		got := tx.Mail.String()
		if tx.Final.code() != 0 {
			got = tx.Final.String()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("verify name %s: %q (transaction %+v); want %q", tc.name, got, tx, tc.want)
		}
	}
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-proxy", up.addr(), "--client-tls-required", "--client-tls-verify-name", "relay.test")
	if code == 0 || !strings.Contains(errOut, "--client-tls-verify") {
		t.Errorf("--client-tls-verify-name without --client-tls-verify: exit %d, %q; want refused", code, errOut)
	}
}
