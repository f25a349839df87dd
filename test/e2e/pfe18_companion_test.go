package e2e

import (
	"bytes"
	"os"
	"regexp"
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
	pf, _ := hostileGmailPostfix(t,
		"virtual_alias_domains = relay.example",
		"virtual_alias_maps = inline:{@relay.example=spam@gmail.test}")
	long := strings.Repeat("x", 1900)
	hostileSend(t, pf.Addr(), "203.0.113.72", "mx.longer.test", []string{
		"MAIL FROM:<bob@longer.test>", "RCPT TO:<" + long + "@relay.example>"}, "")
	compWaitLog(t, pf, `orig_to=<x{1000}`, 30*time.Second)
	compWaitLog(t, pf, `sender non-delivery notification`, 30*time.Second)

	out := companionEnforcer(t, pf, t.TempDir(), "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ report queue=\w+ client=203\.0\.113\.72 client_name=mx\.longer\.test to=<spam@gmail\.test> why="Postfix cut the delivery line at 2000 bytes`})
}

// TestPfe18RecipientSpellsQueueID: smtpd's Received field ends with "for
// <RCPT>", the client's one recipient as written. A partner
// (198.51.100.9, welcomelisted) sends a message that Gmail refuses, so it
// is to be encapsulated from the backup; a spammer then sends a message
// with the partner's Message-ID to `"a id QUEUEID b"@gmail.test`, QUEUEID
// being the partner's. Its backup copy comes later in the mbox and its
// Received field spells the partner's queue id: the encapsulated copy must
// carry the partner's text, not the spammer's.
func TestPfe18RecipientSpellsQueueID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, mbox, bcc := startCompanionBackup(t, dir)
	pf, gmail := hostileGmailPostfix(t, bcc...)

	msg := func(text string) string {
		return "From: <list@partner.example>\r\nTo: <spam@gmail.test>\r\nSubject: news\r\nMessage-ID: <news-1@partner.example>\r\n\r\n" + text + "\r\n"
	}
	hostileSendData(t, pf.Addr(), "198.51.100.9", "mx.partner.test",
		[]string{"MAIL FROM:<list@partner.example>", "RCPT TO:<spam@gmail.test>"}, msg("the partner's news"))
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	m := regexp.MustCompile(`(\w+): client=mx\.partner\.test\[198\.51\.100\.9\]`).FindStringSubmatch(pf.MailLog())
	if m == nil {
		t.Fatalf("no client= line for the partner:\n%s", pf.MailLog())
	}
	hostileSendData(t, pf.Addr(), "203.0.113.73", "mx.spoofer.test",
		[]string{"MAIL FROM:<eve@spoofer.test>", `RCPT TO:<"a id ` + m[1] + ` b"@gmail.test>`}, msg("BUY NOW at spoofer.test"))
	compWaitLog(t, pf, `to=<"a id \w+ b"@gmail\.test>, .*status=sent`, 30*time.Second)
	compWait(t, 10*time.Second, "the backup mbox holds both copies", func() bool {
		b, _ := os.ReadFile(mbox)
		return bytes.Contains(b, []byte("the partner's news")) && bytes.Contains(b, []byte("BUY NOW"))
	})

	out := companionEnforcer(t, pf, dir, "198.51.100.9\n", "-f", mbox, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ encapsulate queue=` + m[1] + ` client=198\.51\.100\.9 .*to=<spam@gmail\.test>`})
	enc := compWaitTx(t, gmail, 30*time.Second, func(tx harness.Transaction) bool {
		return tx.Accepted() && bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:"))
	})
	if got := compAttachment(t, enc.Data); !bytes.Contains(got, []byte("the partner's news")) || bytes.Contains(got, []byte("BUY NOW")) {
		t.Errorf("the encapsulated copy carries:\n%s\nwant the partner's message", got)
	}
}
