package e2e

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRev17MyoriginRouted: with [rewrite] myorigin, an unqualified sender
// with a source route (MAIL FROM:<@hub.example:scanner>) was seen by the
// restrictions, and named in their refusal and the reject line, as
// "@hub.example:scanner", the route kept, where Postfix's smtpd strips the
// route first and names <scanner>; the spool and the upstream must get
// scanner@office.example.
func TestRev17MyoriginRouted(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "ENHANCEDSTATUSCODES"}})
	r := opsRelay(t, up.Addr(), "[rewrite]\nmyorigin = \"office.example\"\n", "--forward-on-disconnect")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<@hub.example:scanner> SIZE=100")
	mustCmd(t, c, "250", "RCPT TO:<ops@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: scan\r\n\r\nscan\r\n.")
	mustCmd(t, c, "221", "QUIT")
	txs := up.WaitTransactions(t, 1, 15*time.Second)
	if got := txs[0].MailFrom; got != "scanner@office.example" {
		t.Errorf("envelope sender upstream %q; want scanner@office.example", got)
	}

	strict := opsRelay(t, up.Addr(), "[rewrite]\nmyorigin = \"office.example\"\n[policy]\nsender_restrictions = [\"reject_non_fqdn_sender\"]\n")
	c = mustDial(t, strict.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<@hub.example:scanner>")
	mustCmd(t, c, "504 5.5.2 <scanner>: Sender address rejected: need fully-qualified address", "RCPT TO:<ops@example.net>")
}
