package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo28BannedThenWelcomedByName: a client banned before the
// administrator welcomelisted it by host name was still refused at connect
// (554, "banned"), and its mail held: the connect-time check and the hold
// knew only the address, and a ban made before an address was listed is
// ignored while it is. A host-name entry holds the same way, in store and
// forward and in proxy mode; a banned client whose name the list does not
// match is refused as before.
func TestLo28BannedThenWelcomedByName(t *testing.T) {
	t.Parallel()
	for _, proxy := range []bool{false, true} {
		name := map[bool]string{false: "store", true: "proxy"}[proxy]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			partner := map[bool]string{false: "127.0.28.11", true: "127.0.28.12"}[proxy]
			stranger := map[bool]string{false: "127.0.28.21", true: "127.0.28.22"}[proxy]
			rev := func(ip string) string {
				p := strings.Split(ip, ".")
				return p[3] + "." + p[2] + "." + p[1] + "." + p[0] + ".in-addr.arpa."
			}
			dns := harness.StartDNS(t, rev(partner)+"  PTR  mx.partner28.test.\nmx.partner28.test.  A  "+partner+"\n"+
				rev(stranger)+"  PTR  mx.stranger28.test.\nmx.stranger28.test.  A  "+stranger+"\n")
			gmail := newFakeGmail(t)
			dir := t.TempDir()
			bans := writeFile(t, dir, "bans", partner+" until=2099-01-01T00:00:00Z reason=\"spam before the list\"\n"+
				stranger+" until=2099-01-01T00:00:00Z reason=\"spam\"\n", 0o644)
			cfg := "[enforce]\nban_delay = \"0s\"\nbans = \"" + bans + "\"\n"
			r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy, config: cfg, welcome: `^mx\.partner28\.test$` + "\n",
				extra: []string{"--client-names-server", dns.Addr()}})
			c, g, err := dialFrom(r.addr(), stranger)
			if err == nil {
				c.Close()
			}
			if g.code() != 554 {
				t.Errorf("banned %s, not listed, greeted %v (%v); want 554", stranger, g, err)
			}
			rcpt := "partner-" + name + "@gmail.test"
			tx, err := sendFrom(r.addr(), partner, "alice@partner28.example", []string{rcpt}, gmailMessage("alice@partner28.example", "lo28 "+name))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("banned %s welcomelisted by name: greeting %v, heard %v (%v); want 220 and 250", partner, tx.Greeting, heardReply(tx), err)
			}
			if !waitFor(20*time.Second, func() bool {
				for _, tx := range gmail.Transactions() {
					if tx.Accepted() && strings.Join(tx.To(), ",") == rcpt {
						return true
					}
				}
				return false
			}) {
				t.Errorf("the welcomelisted client's message was not delivered; holds: %v", fieldsOf(r.events("hold")))
			}
			if h := r.events("hold"); len(h) != 0 {
				t.Errorf("holds %v; want none", fieldsOf(h))
			}
		})
	}
}
