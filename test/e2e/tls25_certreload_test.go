package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTLS25SighupCertificateReloadLogged: a renewed certificate put in
// place and signalled with SIGHUP (systemctl reload, as certbot's deploy
// hooks do) is served from then on, and the diagnostic log says so, as it
// does when the file watch finds it. The SIGHUP reload was silent on
// success, so the operator could not tell that the renewal took until a
// client connected.
func TestTLS25SighupCertificateReloadLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, both := certFiles(t, dir)
	r := startPolicyRelay(t, "[policy]\nrelay_domains = [\"relay.example\"]\n", "--server-tls", "--server-tls-certificate", both)
	_, _, renewed := certFiles(t, t.TempDir())
	data, err := os.ReadFile(renewed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(both, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	// No client connects before the line comes: the file watch, which
	// looks at the files at a handshake, cannot be what logs it.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(r.stderr(), "TLS certificate reloaded") }) {
		t.Errorf("no \"TLS certificate reloaded\" after SIGHUP with a renewed certificate; log:\n%s", r.stderr())
	}
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "220", "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	kp, err := tls.X509KeyPair(data, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha256.Sum256(tc.ConnectionState().PeerCertificates[0].Raw), sha256.Sum256(kp.Certificate[0]); got != want {
		t.Errorf("served certificate %x after SIGHUP; want the renewed one, %x", got[:8], want[:8])
	}
}
