package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestBlk20RelayedNoticeFullDisk: a message relayed with NOTIFY=SUCCESS
// to an upstream without DSN owes its sender a "relayed" notice (RFC 3461
// section 5.2.2.2). With the spool's disk full when the upstream took it,
// the notice could not be queued: the relay logged "delivery status
// notification not sent", deleted the message, and the sender never
// heard. The recipient is deferred instead (as Postfix does when its
// trace service fails), so once there is room again the message goes
// again and the notice is sent: a duplicate, never a notice lost.
func TestBlk20RelayedNoticeFullDisk(t *testing.T) {
	t.Parallel()
	mnt := revDur2Mount(t)
	var accept atomic.Bool
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, _ harness.Transaction, _ string) harness.Response {
		if stage == harness.StageRcpt && !accept.Load() {
			return harness.Response{Reply: "450 4.2.0 not yet"}
		}
		return harness.Response{}
	}})
	spool := filepath.Join(mnt, "spool")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", fake.Addr(), "--forward-on-disconnect", "--poll", "1", "--config", writeConfig(t, ""))
	_, final := opsSend(t, r.addr(), "c.test", "<sender@x.example>", []string{"<ok@example.net> NOTIFY=SUCCESS"}, message("relayed"))
	queuedID(t, final)
	fake.WaitTransactions(t, 1, 20*time.Second) // deferred once, its envelope written

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)
	accept.Store(true)
	if !waitFor(30*time.Second, func() bool { return strings.Contains(r.stderr(), "delivery status notification not sent") }) {
		t.Fatalf("the relay never failed to queue the notice on the full disk; log:\n%s", r.stderr())
	}
	os.Remove(filler)

	notice := func() bool {
		for _, tx := range fake.Transactions() {
			if tx.MailFrom == "" && tx.Accepted() && strings.Contains(string(tx.Data), "relayed") &&
				len(tx.To()) == 1 && tx.To()[0] == "sender@x.example" {
				return true
			}
		}
		return false
	}
	if !waitFor(30*time.Second, notice) {
		t.Errorf("no \"relayed\" notice reached sender@x.example once the disk had room; spool %v; upstream saw:", spoolFiles(t, spool))
		for _, tx := range fake.Transactions() {
			t.Logf("<%s> -> %v: %q", tx.MailFrom, tx.To(), tx.Reply)
		}
	}
	r.stop(10 * time.Second)
}

// TestBlk20TLSRequiredRefusesBeforeStartTLS: with --server-tls-required,
// RFC 3207 section 4 has the server answer 530 to every command before
// STARTTLS but EHLO, NOOP, STARTTLS and QUIT, as Postfix's
// smtpd_tls_security_level = encrypt does. Only MAIL heard it: RCPT and
// DATA heard 503, RSET 250 and VRFY 252, as if TLS were optional. After
// STARTTLS the same commands are answered as usual.
func TestBlk20TLSRequiredRefusesBeforeStartTLS(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	r := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", pem,
		"--server-tls-required", "--interface", "127.0.0.1", "--domain", "relay.test", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	const need = "530 5.7.0 Must issue a STARTTLS command first"
	for _, cmd := range []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA", "RSET", "VRFY b@example.net", "HELP"} {
		mustCmd(t, c, need, "%s", cmd)
	}
	mustCmd(t, c, "250", "NOOP")
	if err := c.startTLS(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "252", "VRFY b@example.net")
	mustCmd(t, c, "503 5.5.1 Error: need MAIL command", "RCPT TO:<b@example.net>")
}
