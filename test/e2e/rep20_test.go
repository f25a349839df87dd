package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Hostile review of the relay's reputation enforcement (rep20).

// TestRep20WelcomedByNameThroughContentFilter: a client welcomelisted by
// its verified host name (--client-names, a host-name pattern) sends mail
// that goes through the after-queue content filter and comes back by the
// reinject listener. Gmail refuses it as spam. The welcomelist spares the
// client (its mail is encapsulated), as it does without the filter: the
// message came back with its client's address but without its name, and
// the welcomelisted partner was banned.
func TestRep20WelcomedByNameThroughContentFilter(t *testing.T) {
	t.Parallel()
	const partner = "127.0.0.107"
	dns := harness.StartDNS(t, `
107.0.0.127.in-addr.arpa.  PTR  mx.partner.test.
mx.partner.test.           A    127.0.0.107
`)
	gmail := newFakeGmail(t)
	gmail.answer("carol@gmail.test", stData, gmailUnsolicited)
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{
		welcome: `^mx\.partner\.test$` + "\n",
		config:  fmt.Sprintf("[enforce]\nban_delay = \"0s\"\n[routing]\ncontent_filter = %q\n", filter.Addr()),
		extra: []string{"--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject),
			"--client-names", "--client-names-server", dns.Addr()},
	})
	tx, err := sendFrom(r.addr(), partner, "alice@partner.example", []string{"carol@gmail.test"}, gmailMessage("alice@partner.example", "partner news"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if !waitFor(30*time.Second, func() bool { return len(enforceEvents(r, partner)) > 0 }) {
		t.Fatalf("the enforcer never acted; events %v", fieldsOf(r.events("")))
	}
	time.Sleep(500 * time.Millisecond)
	if es := enforceEvents(r, partner); actionOf(es) != "spare+encapsulate" {
		t.Errorf("events about the welcomelisted partner %s: %v; want spare and encapsulate", partner, fieldsOf(es))
	}
	if data, _ := os.ReadFile(enforceFile(r, "bans")); strings.Contains(string(data), partner) {
		t.Errorf("the welcomelisted partner is in the ban file:\n%s", data)
	}
}
