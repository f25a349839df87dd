package remote_test

import (
	"context"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// EHLO needs a fully qualified domain or an address literal (RFC 5321
// 4.1.1.1), and servers with Postfix's reject_non_fqdn_helo_hostname
// refuse anything else. On a host whose name is unqualified ("vm", as in
// many containers) relaykeeper said "EHLO vm", or "EHLO localhost" with no
// name at all. Like E-MailRelay, it now gives the connection's local
// address as a literal instead ("EHLO [127.0.0.1]"); dotted names and
// literals are kept.
func TestRevERHeloLiteral(t *testing.T) {
	for helo, want := range map[string]string{"": "[127.0.0.1]", "vm": "[127.0.0.1]", "localhost": "[127.0.0.1]",
		"mail.example.com": "mail.example.com", "[192.0.2.1]": "[192.0.2.1]"} {
		addr := newScript(t, func(s *scriptConn) {
			s.send("220 script.test ESMTP")
			s.expect("EHLO " + want)
			s.send("250 script.test")
			s.expect("QUIT")
			s.send("221 bye")
		})
		c, err := remote.Dial(context.Background(), addr, remote.Options{Helo: helo})
		if err != nil {
			t.Fatalf("Helo %q: %v", helo, err)
		}
		c.Quit()
	}
}
