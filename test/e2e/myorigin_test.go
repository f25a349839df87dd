package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestMyoriginQualifiesSender: with [rewrite] myorigin, an unqualified
// sender (MAIL FROM:<scanner>, as printers send) is accepted and leaves
// as scanner@MYORIGIN, mapped on by sender_canonical_maps; restrictions
// see it as given, so reject_non_fqdn_sender still refuses it naming
// <scanner>; an unqualified recipient is still refused. Without
// myorigin the sender is refused (504), as before.
func TestMyoriginQualifiesSender(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "ENHANCEDSTATUSCODES"}})
	r := opsRelay(t, up.Addr(), "[rewrite]\nmyorigin = \"office.example\"\n"+
		"sender_canonical_maps = [\"inline:{ printer@office.example=scans@example.com }\"]\n", "--forward-on-disconnect")
	mustSend(t, r.addr(), "scanner", []string{"ops@example.net"}, "Subject: scan\r\n\r\nscan\r\n")
	mustSend(t, r.addr(), "printer", []string{"ops@example.net"}, "Subject: scan\r\n\r\nscan\r\n")
	txs := up.WaitTransactions(t, 2, 15*time.Second)
	var got []string
	for _, tx := range txs {
		got = append(got, tx.MailFrom)
	}
	if strings.Join(got, " ") != "scanner@office.example scans@example.com" &&
		strings.Join(got, " ") != "scans@example.com scanner@office.example" {
		t.Errorf("envelope senders upstream %q; want scanner@office.example and scans@example.com", got)
	}
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<scanner> SIZE=100")
	mustCmd(t, c, "504 5.5.2 <user>: Recipient address rejected: need fully-qualified address", "RCPT TO:<user>")

	strict := opsRelay(t, up.Addr(), "[rewrite]\nmyorigin = \"office.example\"\n[policy]\nsender_restrictions = [\"reject_non_fqdn_sender\"]\n")
	c = mustDial(t, strict.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	// Sender restrictions wait for RCPT (smtpd_delay_reject).
	mustCmd(t, c, "250", "MAIL FROM:<scanner>")
	mustCmd(t, c, "504 5.5.2 <scanner>: Sender address rejected: need fully-qualified address", "RCPT TO:<ops@example.net>")

	plain := opsRelay(t, up.Addr(), "")
	c = mustDial(t, plain.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "504 5.5.2 <scanner>: Sender address rejected: need fully-qualified address", "MAIL FROM:<scanner>")
}
