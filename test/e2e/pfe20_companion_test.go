package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPfe20SeedSyslogName: the relay of shared/seeds (002) relays through
// a master.cf transport of its own, "out_default unix - - n - - smtp -o
// syslog_name=relay-zombig-name", so a real Postfix logs each delivery as
// relay-zombig-name/smtp[PID]. The enforcer skipped those lines, every
// Gmail refusal with them: the spammer was never banned.
func TestPfe20SeedSyslogName(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF:    []string{"default_transport = out_default", "relay_transport = out_default"},
		MasterCF: []string{"out_default unix - - n - - smtp",
			"  -o smtp_helo_name=relay.zombig.name", "  -o syslog_name=relay-zombig-name"},
	})
	hostileSend(t, pf.Addr(), "203.0.113.80", "mx.seed.test", []string{"MAIL FROM:<bob@seed.test>", "RCPT TO:<spam@gmail.test>"}, "")
	compWaitLog(t, pf, `relay-zombig-name/smtp\[\d+\]: \w+: to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)

	out := companionEnforcer(t, pf, t.TempDir(), "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.80 .*rule=gmail-unsolicited`})
}
