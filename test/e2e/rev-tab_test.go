package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevTabRoutedRecipientOK: the classic pre-2.10 Postfix layout, with
// relay_restrictions emptied and recipient_restrictions whitelisting the
// relay's own domain through check_recipient_access before
// reject_unauth_destination. A client outside mynetworks must not get a
// routed recipient (percent hack, quoted @, bang path) in that domain past
// the table: Postfix counts the table's OK as DUNNO for such a recipient,
// and reject_unauth_destination refuses it. Nothing is spooled; a plain
// recipient in the domain is still accepted.
func TestRevTabRoutedRecipientOK(t *testing.T) {
	t.Parallel()
	access := writeFile(t, t.TempDir(), "relay_recipients", "relay.example  OK\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
%srelay_restrictions = []
recipient_restrictions = ["permit_mynetworks", "check_recipient_access hash:%s", "reject_unauth_destination"]
`, outsideNetworks, access))
	for _, rcpt := range []string{
		"victim%elsewhere.example@relay.example",
		`"victim@elsewhere.example"@relay.example`,
		"elsewhere.example!victim@relay.example",
		"VICTIM%ELSEWHERE.EXAMPLE@RELAY.EXAMPLE",
	} {
		got, _ := probeRcpt(t, r.addr(), rcpt)
		if got.code() != 554 || !strings.HasSuffix(got.String(), ">: Relay access denied") {
			t.Errorf("RCPT TO:<%s> from outside mynetworks = %q; want 554 5.7.1 <...>: Relay access denied", rcpt, got)
		}
	}
	checkSpoolEmpty(t, r.spool)
	if got, _ := probeRcpt(t, r.addr(), "user@relay.example"); got.code() != 250 {
		t.Errorf("RCPT TO:<user@relay.example> = %q; want 250 (the table's OK)", got)
	}
}

// TestRevTabAccessResolvedForm: Postfix looks an address up in access
// tables as it resolves, so a user@domain entry also refuses the same
// mailbox written with a trailing dot or a source route, in
// check_recipient_access and check_sender_access alike.
func TestRevTabAccessResolvedForm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcptAccess := writeFile(t, dir, "recipient_access", "blocked@relay.example  REJECT\n", 0o644)
	senderAccess := writeFile(t, dir, "sender_access", "spammer@example.org  REJECT\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
%srelay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access hash:%s"]
recipient_restrictions = ["check_recipient_access hash:%s"]
`, outsideNetworks, senderAccess, rcptAccess))
	for _, rcpt := range []string{
		"blocked@relay.example",
		"blocked@relay.example.",
		"Blocked@Relay.Example.",
		"@elsewhere.example:blocked@relay.example",
	} {
		got, _ := probeRcpt(t, r.addr(), rcpt)
		if got.code() != 554 || !strings.HasSuffix(got.String(), ">: Recipient address rejected: Access denied") {
			t.Errorf("RCPT TO:<%s> = %q; want 554 5.7.1 <...>: Recipient address rejected: Access denied", rcpt, got)
		}
	}
	for _, sender := range []string{"spammer@example.org", "spammer@example.org."} {
		a := tryMessage(t, r.addr(), "127.0.0.1", sender, "user@relay.example")
		if want := "554 5.7.1 <" + sender + ">: Sender address rejected: Access denied"; a.rcpt.String() != want {
			t.Errorf("MAIL FROM:<%s>: RCPT = %q; want %q", sender, a.rcpt, want)
		}
	}
	checkSpoolEmpty(t, r.spool)
}

// revTabZone answers as Spamhaus does: listings in 127.0.0.2-11, and
// 127.255.255.252/254/255 for "typo in the list's name", "query through a
// public resolver" and "too many queries", which are no verdict on the
// client. 127.0.0.8's answer is 127.0.0.1, outside the result filter.
const revTabZone = `
2.0.0.127.zen.example. A 127.0.0.2
3.0.0.127.zen.example. A 127.255.255.254
4.0.0.127.zen.example. A 127.255.255.252
5.0.0.127.zen.example. A 127.255.255.255
6.0.0.127.bl.example.  A 127.255.255.254
7.0.0.127.bl.example.  A 127.0.0.2
8.0.0.127.zen.example. A 127.0.0.1
`

// TestRevTabDNSBLAnswers: reject_rbl_client with Postfix's result filter
// (zen.example=127.0.0.[2..11]) and without one. The lists' error answers
// (127.255.255.x) never refuse a client, with or without a filter, nor
// does an answer outside the filter; a listing does. A list whose TXT
// record is 20 KB long (a hostile or broken DNS server; the answer comes
// over TCP after a truncated UDP one) must not make the reply line longer
// than RFC 5321's 512 octets.
func TestRevTabDNSBLAnswers(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, revTabZone)
	dns.Set("7.0.0.127.bl.example", "TXT", "see https://bl.example/ "+strings.Repeat("x", 20000))
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
mynetworks = ["192.0.2.0/24"]
relay_domains = ["relay.example"]
client_restrictions = ["reject_rbl_client zen.example=127.0.0.[2..11]", "reject_rbl_client bl.example"]
dns_server = %q
`, dns.Addr()))
	runDNSBLCases(t, r, []dnsblCase{
		{"127.0.0.2", "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.example"},
		{"127.0.0.3", "250"},
		{"127.0.0.4", "250"},
		{"127.0.0.5", "250"},
		{"127.0.0.6", "250"},
		{"127.0.0.8", "250"},
	})
	a := tryMessage(t, r.addr(), "127.0.0.7", "sender@example.org", "user@relay.example")
	line := a.rcpt.String()
	if want := "554 5.7.1 Service unavailable; Client host [127.0.0.7] blocked using bl.example; see https://bl.example/ xxx"; !strings.HasPrefix(line, want) {
		t.Errorf("from 127.0.0.7 (listed, 20 KB TXT): RCPT = %.200q...; want it to start %q", line, want)
	}
	if n := len(line) + len("\r\n"); n > 512 {
		t.Errorf("from 127.0.0.7 (listed, 20 KB TXT): RCPT reply line is %d octets; RFC 5321 allows 512", n)
	}
}

// TestRevTabAccessDisconnectCodes: access(5) says that after an access
// table's "421 text" or "521 text" Postfix answers with that code and text
// and disconnects at once. The client hears the reply, then the
// connection ends: the next command gets no answer.
func TestRevTabAccessDisconnectCodes(t *testing.T) {
	t.Parallel()
	access := writeFile(t, t.TempDir(), "sender_access",
		"bye.example   421 4.7.0 closing now\ngone.example  521 5.7.1 go away for good\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
%srelay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access hash:%s"]
`, outsideNetworks, access))
	for _, tc := range []struct{ sender, want string }{
		{"x@bye.example", "421 4.7.0 <x@bye.example>: Sender address rejected: closing now"},
		{"x@gone.example", "521 5.7.1 <x@gone.example>: Sender address rejected: go away for good"},
	} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<%s>", tc.sender)
		mustCmd(t, c, tc.want, "RCPT TO:<user@relay.example>")
		c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if rep, err := c.cmd("NOOP"); err == nil {
			t.Errorf("MAIL FROM:<%s>: after %q the session goes on: NOOP = %q; want the connection closed", tc.sender, tc.want, rep)
		}
		c.Close()
	}
}

// TestRevTabAccessResultsChecked: a sender_access file with a mistyped
// action (REJCET) or a lookup table as a result does not start the relay
// answering 451 to every sender it matches: the relay refuses to start and
// names the configuration line, the table file and each bad line.
func TestRevTabAccessResultsChecked(t *testing.T) {
	t.Parallel()
	access := writeFile(t, t.TempDir(), "sender_access",
		"ok.example  OK\nx.example   REJCET typo\ny.example   mysql:/etc/postfix/x.cf\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[policy]\nsender_restrictions = [\"check_sender_access hash:%s\"]\n", access))
	_, stderr, code := runBinary(t, harness.Binary(t), "", "--as-server", "--interface", "127.0.0.1:1",
		"--spool-dir", t.TempDir(), "--config", cfg)
	if code == 0 {
		t.Fatalf("relaykeeper with a bad sender_access result exited 0; stderr:\n%s", stderr)
	}
	for _, want := range []string{cfg + ":5: policy.sender_restrictions", access + ":2: ", "REJCET", access + ":3: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestRevTabMailStageHold: the enforcer's sender_access is a Postfix
// sender_access file checked at MAIL FROM, which administrators also edit
// by hand. Its HOLD and DISCARD lines act as they do at RCPT: the message
// from held.example is kept as ID.envelope.held and never delivered, the
// one from gone.example is accepted and thrown away; a REJECT still
// refuses at MAIL, and an unlisted sender is delivered.
func TestRevTabMailStageHold(t *testing.T) {
	t.Parallel()
	access := writeFile(t, t.TempDir(), "sender_access",
		"held.example  HOLD quarantine\ngone.example  DISCARD\nbad.example   REJECT\n", 0o644)
	// The table spares the welcomelist's clients (docs/enforce.md), and
	// the default one lists loopback, which this test's client is.
	welcome := writeFile(t, t.TempDir(), "welcomelist", "192.0.2.77\n", 0o644)
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\nrelay_domains = [\"relay.example\"]\n[enforce]\nsender_access = %q\nwelcomelist = %q\n", access, welcome),
		"--forward-to", sink.Addr(), "--forward-on-disconnect")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "554 5.7.1 <x@bad.example>: Sender address rejected: Access denied", "MAIL FROM:<x@bad.example>")
	c.cmd("QUIT")
	held := tryMessage(t, r.addr(), "127.0.0.1", "x@held.example", "user@relay.example")
	gone := tryMessage(t, r.addr(), "127.0.0.1", "x@gone.example", "user@relay.example")
	ok := tryMessage(t, r.addr(), "127.0.0.1", "x@ok.example", "user@relay.example")
	for _, a := range []attempt{held, gone, ok} {
		if a.rcpt.code() != 250 || a.final.code() != 250 {
			t.Fatalf("RCPT %q, final %q; want both 250", a.rcpt, a.final)
		}
	}
	heldID := queuedID(t, held.final)
	sink.WaitCount(t, 1, 15*time.Second)
	time.Sleep(500 * time.Millisecond) // a second would show up now
	if ms := sink.Messages(); len(ms) != 1 || ms[0].From != "x@ok.example" {
		var got []string
		for _, m := range ms {
			got = append(got, m.From)
		}
		t.Errorf("the smarthost got messages from %q; want [x@ok.example] only", got)
	}
	files := waitSpool(t, r.spool, 10*time.Second, "the held message only", func(f map[string][]string) bool { return len(f) == 1 })
	if got := files[heldID]; len(got) != 2 || got[1] != "envelope.held" {
		t.Errorf("spool holds %v; want %s.content and %s.envelope.held only", files, heldID, heldID)
	}
}

// TestRevTabSenderLoginTrailingDot: with sender_login_maps and
// reject_sender_login_mismatch, a client that has not logged in may not
// send as an owned address, and writing it with a trailing dot
// (MAIL FROM:<alice@example.org.>, the same mailbox) changes nothing.
func TestRevTabSenderLoginTrailingDot(t *testing.T) {
	t.Parallel()
	maps := writeFile(t, t.TempDir(), "sender_logins", "alice@example.org  alice\n@example.net  carol\n", 0o644)
	r := startAuthRelay(t, "server plain alice alice+20pw\n",
		fmt.Sprintf("[auth]\nsender_login_maps = %q\nreject_sender_login_mismatch = true\n", maps))
	for _, sender := range []string{"alice@example.org.", "ALICE@EXAMPLE.ORG.", "anyone@example.net."} {
		anon := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, anon, "250", "EHLO client.e2e.test")
		mustCmd(t, anon, "250", "MAIL FROM:<%s>", sender)
		mustCmd(t, anon, "553 5.7.1 <"+sender+">: Sender address rejected: not logged in", "RCPT TO:<user@relay.example>")
		anon.cmd("QUIT")
	}
}
