package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestRecipientDelimiterAccess: with recipient_delimiter = "+", as Debian's
// main.cf sets it, a user@domain entry in check_recipient_access and
// check_sender_access also refuses user+anything@domain (access(5),
// "extension address lookup"), and the more specific user+tag@domain
// entry still comes first. Without the setting the address is looked up
// as given, as Postfix does with an empty recipient_delimiter.
func TestRecipientDelimiterAccess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcptAccess := writeFile(t, dir, "recipient_access",
		"blocked@relay.example  REJECT\nblocked+ok@relay.example  OK\n", 0o644)
	senderAccess := writeFile(t, dir, "sender_access", "spammer@example.org  REJECT\n", 0o644)
	policy := fmt.Sprintf(`[policy]
%srelay_domains = ["relay.example"]
sender_restrictions = ["check_sender_access hash:%s"]
recipient_restrictions = ["check_recipient_access hash:%s"]
`, outsideNetworks, senderAccess, rcptAccess)
	// A top-level key comes before writeConfig's [delivery].
	with := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--domain", "relay.test",
		"--spool-dir", t.TempDir(), "--config", writeFile(t, dir, "relaykeeper.toml", "recipient_delimiter = \"+\"\n"+policy, 0o644))
	without := startPolicyRelay(t, policy)

	const denied = ">: Recipient address rejected: Access denied"
	for _, rcpt := range []string{"blocked+tag@relay.example", "Blocked+Tag@Relay.Example."} {
		if got, _ := probeRcpt(t, with.addr(), rcpt); got.code() != 554 || !strings.HasSuffix(got.String(), denied) {
			t.Errorf("recipient_delimiter = \"+\": RCPT TO:<%s> = %q; want 554 5.7.1 <...>%s", rcpt, got, denied)
		}
		if got, _ := probeRcpt(t, without.addr(), rcpt); got.code() != 250 {
			t.Errorf("no recipient_delimiter: RCPT TO:<%s> = %q; want 250 (looked up as given)", rcpt, got)
		}
	}
	if got, _ := probeRcpt(t, with.addr(), "blocked+ok@relay.example"); got.code() != 250 {
		t.Errorf("RCPT TO:<blocked+ok@relay.example> = %q; want 250 (its own OK entry comes first)", got)
	}
	a := tryMessage(t, with.addr(), "127.0.0.1", "spammer+list@example.org", "user@relay.example")
	if want := "554 5.7.1 <spammer+list@example.org>: Sender address rejected: Access denied"; a.rcpt.String() != want {
		t.Errorf("MAIL FROM:<spammer+list@example.org>: RCPT = %q; want %q", a.rcpt, want)
	}
	checkSpoolEmpty(t, with.spool)
}

// TestRecipientDelimiterRefused: a delimiter that could never separate an
// extension is refused at start, naming the key and its line.
func TestRecipientDelimiterRefused(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"@", "a", "+ ", `\"`} {
		cfg := writeFile(t, t.TempDir(), "relaykeeper.toml", "# a comment\nrecipient_delimiter = \""+bad+"\"\n", 0o644)
		_, out, code := opsCmd(t, "", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
		if code == 0 || !strings.Contains(out, cfg+":2") || !strings.Contains(out, "recipient_delimiter") {
			t.Errorf("recipient_delimiter = %q: exit %d, stderr %q; want a refusal naming %s:2 and the key", bad, code, out, cfg)
		}
	}
}
