package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPfe19RequeuedKeepsClient: a spammer's message is held (an access
// table's HOLD, or the administrator's postsuper -h), and the administrator
// requeues the queue with postsuper -r, as after any change of routing.
// Postfix gives the message a new queue id through pickup, which logs
// "uid=N from=<...> orig_id=OLD": the message is still the spammer's,
// submitted over SMTP. Gmail refuses it as unsolicited: the spammer is
// banned, its message not taken for a local submission and encapsulated
// (sent to Gmail again, attached).
func TestPfe19RequeuedKeepsClient(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{
			"smtpd_authorized_xclient_hosts = 127.0.0.0/8",
			"relay_domains = gmail.test",
			"smtpd_recipient_restrictions = check_recipient_access inline:{spam@gmail.test=HOLD}, permit_mynetworks, reject_unauth_destination",
		},
	})
	hostileSend(t, pf.Addr(), "203.0.113.74", "mx.requeued.test", []string{
		"MAIL FROM:<bob@requeued.test>", "RCPT TO:<spam@gmail.test>"}, "")
	compWaitLog(t, pf, `: hold: RCPT from mx\.requeued\.test`, 30*time.Second)
	m := regexp.MustCompile(`(\w+): client=mx\.requeued\.test\[203\.0\.113\.74\]`).FindStringSubmatch(pf.MailLog())
	if m == nil {
		t.Fatalf("no client= line:\n%s", pf.MailLog())
	}
	postsuper, err := exec.LookPath("postsuper")
	if err != nil {
		harness.Missing(t, "postsuper: %v", err)
	}
	if out, err := exec.Command(postsuper, "-c", pf.ConfigDir(), "-r", m[1]).CombinedOutput(); err != nil {
		t.Fatalf("postsuper -r %s: %v\n%s", m[1], err, out)
	}
	compWaitRetries(t, pf, `orig_id=`+m[1], 1, 30*time.Second) // postqueue -f wakes pickup
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)

	dir := t.TempDir()
	welcome := filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(welcome, []byte("127.0.0.0/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	banLog := filepath.Join(dir, "bans.log")
	out := review11Enforcer(t, pf, dir, filepath.Join(dir, "sender_access"), welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.74 prefix=\S+ queue=\w+ client_name=mx\.requeued\.test from=<bob@requeued\.test> to=<spam@gmail\.test> orig_queue=` + m[1] + ` `})
	compWantBans(t, banLog, "203.0.113.74")
}
