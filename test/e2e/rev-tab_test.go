package e2e

import (
	"fmt"
	"strings"
	"testing"
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
