package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevEnfClientPortLogging: with smtpd_client_port_logging = yes,
// Postfix logs every client as "client=NAME[IP]:PORT". The spammer is
// still banned, and never taken for local submission (whose refusal is
// encapsulated: re-sent as the relay itself).
func TestRevEnfClientPortLogging(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	dir := t.TempDir()
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{
			"smtpd_authorized_xclient_hosts = 127.0.0.0/8",
			"relay_domains = gmail.test",
			"smtpd_client_port_logging = yes",
		},
	})
	hostileSend(t, pf.Addr(), "203.0.113.81", "mx.spammer.test", []string{
		"MAIL FROM:<bob@spammer.test>", "RCPT TO:<spam@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	log := pf.MailLog()
	t.Logf("Postfix's log:\n%s", log)
	if !strings.Contains(log, "client=mx.spammer.test[203.0.113.81]:") {
		t.Fatalf("Postfix's log has no client=NAME[IP]:PORT line")
	}
	banLog := filepath.Join(dir, "bans.log")
	access := filepath.Join(dir, "sender_access")
	welcome := filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(welcome, []byte("127.0.0.0/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := review11Enforcer(t, pf, dir, access, welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.81 .*rule=gmail-unsolicited`})
	if strings.Contains(out, "submitted locally") {
		t.Errorf("the spammer's refusal was taken for local submission:\n%s", out)
	}
	compWantBans(t, banLog, "203.0.113.81")
}
