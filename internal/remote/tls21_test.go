package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTls21ClientCertificateNamesFile: a client certificate that cannot be
// loaded is refused at start naming the file, as the server's certificate
// is ("--client-tls-certificate: tls: failed to find any PEM data" named
// neither the certificate's file nor the key's).
func TestTls21ClientCertificateNamesFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "client-cert.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []TLSSettings{
		{Opportunistic: true, Certificate: bad},
		{Opportunistic: true, Certificate: bad, Key: bad + ".key"},
	} {
		_, _, err := s.Config("smarthost.example:587", false)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.HasPrefix(err.Error(), "tls.client_certificate: ") {
			t.Errorf("Config with certificate %s, key %q = %v; want a tls.client_certificate error naming the file", bad, s.Key, err)
		}
	}
}
