package smtpd

import (
	"bufio"
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// rep20Bans bans every client.
type rep20Bans struct{}

func (rep20Bans) BannedClient(ip netip.Addr, _ string) (enforce.BanEntry, bool) {
	return enforce.BanEntry{IP: ip, Until: time.Now().Add(time.Hour), Reason: "gmail-unsolicited: 550 5.7.1 spam"}, true
}

func (b rep20Bans) DueClient(ip netip.Addr, name string) (enforce.BanEntry, bool) {
	return b.BannedClient(ip, name)
}

func (rep20Bans) NamesSpare() bool { return false }

// TestRep20BannedClientHearsWhyOverImplicitTLS: a banned client that
// reconnects to the implicit-TLS port (465, --server-tls-connection) hears
// its 554 over TLS, as Postfix's wrapper mode answers it, not as plain
// text in place of the TLS handshake, which its TLS library reports as a
// broken handshake without a word of the ban.
func TestRep20BannedClientHearsWhyOverImplicitTLS(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TLSConfig, o.ImplicitTLS, o.Bans = selfSigned(t), true, rep20Bans{} })
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with a banned client: %v; want the handshake, then the 554", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "554 5.7.1 ") || !strings.Contains(line, "is banned until") {
		t.Errorf("a banned client over implicit TLS hears %q (%v); want 554 5.7.1 ... is banned until ...", line, err)
	}
}
