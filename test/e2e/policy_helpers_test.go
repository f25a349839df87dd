package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// Helpers shared by the policy_*_test.go files: files written by the test,
// a relay started with a policy configuration, a raw client that can dial
// from any 127.0.0.0/8 address and start TLS, and mail-log queries.

// outsideNetworks makes 127.0.0.0/8 untrusted: mynetworks holds only a
// documentation network, so loopback clients are "outside" for the relay
// restrictions while still being let in at connect (they are local).
const outsideNetworks = `mynetworks = ["192.0.2.0/24"]` + "\n"

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// startPolicyRelay starts "relaykeeper --as-server" on 127.0.0.1 with a
// configuration file holding cfg (TOML, sections included) and the extra
// switches, and returns it; its spool is r.spool.
func startPolicyRelay(t *testing.T, cfg string, extra ...string) *relay {
	t.Helper()
	args := []string{"--as-server", "--interface", "127.0.0.1", "--domain", "relay.test",
		"--spool-dir", t.TempDir(), "--config", writeConfig(t, cfg)}
	return startRelay(t, "127.0.0.1", append(args, extra...)...)
}

// dialFrom connects to addr from the local address from (any 127.0.0.0/8
// address works on Linux without configuration) and reads the greeting.
func dialFrom(addr, from string) (*smtpClient, reply, error) {
	conn, err := dialPlain(addr, from)
	if err != nil {
		return nil, nil, err
	}
	c := &smtpClient{conn: conn, r: newReader(conn)}
	greet, err := c.read()
	if err != nil {
		conn.Close()
		return nil, greet, err
	}
	return c, greet, nil
}

// dialPlain connects to addr from the local address from, and reads
// nothing.
func dialPlain(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// mustDial is dialFrom that fails the test unless the greeting is 220, and
// that closes the connection at the end of the test.
func mustDial(t *testing.T, addr, from string) *smtpClient {
	t.Helper()
	c, greet, err := dialFrom(addr, from)
	if err != nil {
		t.Fatalf("connect to %s from %s: %v (greeting %q)", addr, from, err, greet)
	}
	t.Cleanup(func() { c.Close() })
	if greet.code() != 220 {
		t.Fatalf("greeting from %s = %q; want 220", addr, greet)
	}
	return c
}

// mustCmd sends a command and fails the test unless the reply is exactly
// want (all lines joined with \r\n, as reply.String shows them) or, for a
// want of three digits, has that code.
func mustCmd(t *testing.T, c *smtpClient, want, format string, args ...any) reply {
	t.Helper()
	rep, err := c.cmd(format, args...)
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
	if !replyIs(rep, want) {
		t.Fatalf("%s = %q; want %q", fmt.Sprintf(format, args...), rep, want)
	}
	return rep
}

// replyIs reports whether rep is exactly want, or has the code want when
// want is three digits only.
func replyIs(rep reply, want string) bool {
	if len(want) == 3 {
		return fmt.Sprint(rep.code()) == want
	}
	return rep.String() == want
}

// ehloLines sends EHLO and returns the extension keywords offered (upper
// case, first word of each line after the first).
func ehloKeywords(t *testing.T, c *smtpClient) map[string]string {
	t.Helper()
	rep := mustCmd(t, c, "250", "EHLO client.e2e.test")
	kw := map[string]string{}
	for _, l := range rep[1:] {
		if len(l) < 4 {
			continue
		}
		k, v, _ := strings.Cut(l[4:], " ")
		kw[strings.ToUpper(k)] = v
	}
	return kw
}

// startTLS sends STARTTLS, checks the 220 and does the handshake, trusting
// any certificate.
func (c *smtpClient) startTLS() error {
	rep, err := c.cmd("STARTTLS")
	if err != nil {
		return err
	}
	if rep.code() != 220 {
		return fmt.Errorf("STARTTLS = %q; want 220", rep)
	}
	if c.r.Buffered() > 0 {
		return fmt.Errorf("server sent %d bytes after its 220 before the handshake", c.r.Buffered())
	}
	return handshake(c)
}

// handshake makes c a TLS client over its connection, trusting any
// certificate, after a 220 to STARTTLS.
func handshake(c *smtpClient) error {
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "relay.test"})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn = tc
	c.r = newReader(tc)
	return nil
}

// authPlain is the initial response of AUTH PLAIN for user and password.
func authPlain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// certFiles makes a self-signed ECDSA certificate for localhost and
// 127.0.0.1 in dir and returns the paths of the certificate, the key, and
// one PEM file holding both (E-MailRelay's form). The files are readable
// by anyone, so that Postfix's unprivileged daemons can read them too.
func certFiles(t *testing.T, dir string) (certPath, keyPath, bothPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "relay.test"},
		DNSNames:              []string{"relay.test", "localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	k := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return writeFile(t, dir, "cert.pem", c, 0o644), writeFile(t, dir, "key.pem", k, 0o644),
		writeFile(t, dir, "both.pem", k+c, 0o600)
}

// rejectsTo returns the mail-log reject lines at stage for recipient to.
func rejectsTo(r *relay, stage, to string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("reject") {
		if e.Get("stage") == stage && e.Get("to") == "<"+to+">" {
			out = append(out, e)
		}
	}
	return out
}

// checkRejectLogged fails the test unless the mail log has a reject line
// at stage for recipient to whose reply is exactly what the client heard.
func checkRejectLogged(t *testing.T, r *relay, stage, to string, heard reply) {
	t.Helper()
	var es []*maillog.Entry
	waitFor(5*time.Second, func() bool { es = rejectsTo(r, stage, to); return len(es) > 0 })
	if len(es) != 1 || es[0].Get("reply") != heard.String() {
		var got []string
		for _, e := range es {
			got = append(got, e.Get("reply"))
		}
		t.Errorf("mail-log reject lines stage=%s to=<%s>: replies %q; want exactly one, %q (what the client heard)", stage, to, got, heard.String())
	}
}

// diagLines returns the diagnostic-log lines (slog text) of the relay that
// contain every one of substrs.
func diagLines(r *relay, substrs ...string) []string {
	var out []string
	for _, l := range strings.Split(r.stderr(), "\n") {
		if !strings.HasPrefix(l, "time=") {
			continue
		}
		ok := true
		for _, s := range substrs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// waitDiag waits until a diagnostic line contains every one of substrs.
func waitDiag(r *relay, timeout time.Duration, substrs ...string) []string {
	var out []string
	waitFor(timeout, func() bool { out = diagLines(r, substrs...); return len(out) > 0 })
	return out
}
