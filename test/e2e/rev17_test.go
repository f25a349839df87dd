package e2e

import (
	"strings"
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

// TestRev17ProxyBanRefusalNamesSenderAsGiven: every reject line names the
// sender as the client gave it (Postfix's smtpd logs "from=<...>" as
// given, before cleanup's canonical maps). The proxy's refusal of a client
// whose ban is due (f4b38be) named it as sender_canonical_maps had
// rewritten it, an address the client never sent: a search of the mail
// log for the client's sender missed the refusal.
func TestRev17ProxyBanRefusalNamesSenderAsGiven(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, config: "[enforce]\nban_delay = \"3s\"\n" +
		"[rewrite]\nsender_canonical_maps = [\"inline:{ alice@clean.example=alice@mapped.example }\"]\n"})
	const client = "127.0.0.5"
	tx, err := sendFrom(r.addr(), client, "alice@clean.example", []string{"spam@gmail.test"}, gmailMessage("alice@clean.example", "spam"))
	if err != nil || tx.Final.code() != 550 {
		t.Fatalf("send spam: %v %+v; want Gmail's 550", err, tx)
	}
	tx, err = sendFrom(r.addr(), client, "alice@clean.example", []string{"ok@gmail.test"}, gmailMessage("alice@clean.example", "within delay"))
	if err != nil || len(tx.Mail) != 1 || !strings.HasPrefix(tx.Mail[0], "554 5.7.1 ") {
		t.Fatalf("MAIL within the ban delay: %v %+v; want 554 5.7.1", err, tx)
	}
	var line string
	waitFor(5*time.Second, func() bool {
		for _, l := range strings.Split(r.stderr(), "\n") {
			if strings.Contains(l, "reject ") && strings.Contains(l, "stage=mail") && strings.Contains(l, "banned until") {
				line = l
				return true
			}
		}
		return false
	})
	if !strings.Contains(line, "from=<alice@clean.example>") {
		t.Errorf("the ban refusal's reject line %q; want it to name from=<alice@clean.example>, as given", line)
	}
}
