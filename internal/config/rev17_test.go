package config

import "testing"

// TestRev17TLSConfigMaximum: in E-MailRelay's --tls-config, "-tlsv1.3"
// sets the highest version to TLS 1.3 (m_max in its OpenSSL back-end),
// which is relaykeeper's own highest: "tlsv1.2,-tlsv1.3", the explicit
// form of what relaykeeper always negotiates, was refused as "a narrower
// range", and an E-MailRelay command line with it did not start.
func TestRev17TLSConfigMaximum(t *testing.T) {
	for _, v := range []string{"-tlsv1.3", "tlsv1.2,-tlsv1.3", "openssl, TLSv1.2, -TLSv1.3"} {
		if _, err := ParseSwitches([]string{"--as-server", "--tls-config=" + v}); err != nil {
			t.Errorf("--tls-config=%s: %v; want it taken", v, err)
		}
	}
}
