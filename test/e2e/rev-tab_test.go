package e2e

import (
	"fmt"
	"strings"
	"testing"
)

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
