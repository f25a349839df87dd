package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPfe18CatchAllCutLine: the relay's domain has a catch-all alias to a
// Gmail mailbox, as where Gmail keeps a domain's mail. A spammer writes to
// a 1900-byte local part of it; Gmail refuses the spam as unsolicited, and
// Postfix logs the delivery with orig_to=<the long address>, cut at 2000
// bytes: the status and the reply are lost. The enforcer cannot ban on a
// reply it does not have, but it says so, naming the client, instead of
// skipping the line.
func TestPfe18CatchAllCutLine(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{
			"smtpd_authorized_xclient_hosts = 127.0.0.0/8",
			"relay_domains = gmail.test",
			"virtual_alias_domains = relay.example",
			"virtual_alias_maps = inline:{@relay.example=spam@gmail.test}",
		},
	})
	long := strings.Repeat("x", 1900)
	hostileSend(t, pf.Addr(), "203.0.113.72", "mx.longer.test", []string{
		"MAIL FROM:<bob@longer.test>", "RCPT TO:<" + long + "@relay.example>"}, "")
	compWaitLog(t, pf, `orig_to=<x{1000}`, 30*time.Second)
	compWaitLog(t, pf, `sender non-delivery notification`, 30*time.Second)

	dir := t.TempDir()
	welcome := filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(welcome, []byte("127.0.0.0/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, harness.Binary(t), "postfix-enforcer", "--log", pf.MailLogFile(), "--state", filepath.Join(dir, "state"),
		"--sender-access", filepath.Join(dir, "sender_access"), "--welcomelist", welcome, "--ban-log", filepath.Join(dir, "bans.log"),
		"--ban-delay", "0", "--smtp", pf.Addr(), "--sender", "postmaster@relay.test", "--once", "--trusted-upstream", "127.0.0.1")
	if code, err := p.Wait(60 * time.Second); code != 0 || err != nil {
		t.Fatalf("postfix-enforcer --once: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, p.Stdout(), p.Stderr())
	}
	out := p.Stdout()
	t.Logf("postfix-enforcer --once:\n%s", out)
	compWantLines(t, out, []string{`^\S+ report queue=\w+ client=203\.0\.113\.72 client_name=mx\.longer\.test to=<spam@gmail\.test> why="Postfix cut the delivery line at 2000 bytes`})
}
