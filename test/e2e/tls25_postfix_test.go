package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestTLS25PostfixUpstreamTLSLevels: a private Postfix with STARTTLS as
// the smarthost. With --client-tls-required and --client-tls-verify naming
// its certificate, the mail goes over TLS (Postfix logs the TLS session);
// asked to verify another name, the relay defers the mail, and the mail
// log's delivery line gives the certificate's reason.
func TestTLS25PostfixUpstreamTLSLevels(t *testing.T) {
	t.Parallel()
	final := harness.NewFakeSMTP(t, harness.Script{})
	cert, key, _ := certFiles(t, t.TempDir())
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(final.Addr()),
		MainCF: []string{"relay_domains = example.net", "smtpd_tls_security_level = may",
			"smtpd_tls_cert_file = " + cert, "smtpd_tls_key_file = " + key, "smtpd_tls_loglevel = 1"}})
	for _, tc := range []struct {
		name   string
		extra  []string
		result string // of the delivery line
		reply  string // in its reply
	}{
		{"verified", nil, "sent", "250 2.0.0 Ok"},
		{"wrong name", []string{"--client-tls-server-name", "other.test"}, "deferred", "certificate is valid for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
				"--forward-to", pf.Addr(), "--poll", "1", "--client-tls-required", "--client-tls-verify", cert}, tc.extra...)
			r := startRelay(t, "127.0.0.1", args...)
			mustSend(t, r.addr(), "a@example.org", []string{"b@example.net"}, message("tls25 "+tc.name))
			e := r.waitEvent("delivery", 20*time.Second, nil)
			if e == nil {
				return
			}
			if e.Get("result") != tc.result || !strings.Contains(e.Get("reply"), tc.reply) {
				t.Errorf("delivery result=%s reply=%q; want %s with %q", e.Get("result"), e.Get("reply"), tc.result, tc.reply)
			}
			if tc.result == "sent" && !strings.Contains(pf.MailLog(), "TLS connection established from") {
				t.Errorf("Postfix logged no TLS session:\n%s", pf.MailLog())
			}
		})
	}
}
