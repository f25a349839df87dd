package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSenderDependentSmarthostLogins is the "one smarthost, a login per
// sender" set-up of Postfix guides, written with Postfix's own tables:
// sender_dependent_relayhost_maps sends a.example's mail to a smarthost
// (relaykeeper here, requiring STARTTLS and AUTH), and
// smtp_sasl_password_maps with smtp_sender_dependent_authentication logs
// in as alice for alice@a.example and as the domain's account for the
// rest. Each message must arrive under its own login; a sender the
// relayhost map does not list goes by MX (and fails here, no DNS).
func TestSenderDependentSmarthostLogins(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	srv := writeFile(t, dir, "server.secrets", "server plain alice-acct pw-alice\nserver plain domain-acct pw:domain\n", 0o600)
	up := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--server-tls", "--server-tls-certificate", pem, "--server-tls-required", "--server-auth", srv,
		"--interface", "127.0.0.1", "--domain", "upstream.test", "--spool-dir", t.TempDir())

	hop := "[" + strings.Replace(up.addr(), ":", "]:", 1)
	sdrh := writeFile(t, dir, "sender_relay", "@a.example "+hop+"\n", 0o644)
	pw := writeFile(t, dir, "sasl_passwd", "alice@a.example alice-acct:pw-alice\n@a.example domain-acct:pw:domain\n", 0o600)
	cfg := writeConfig(t, "[routing]\nsender_dependent_relayhost_maps = [\"hash:"+sdrh+"\"]\n"+
		"[auth]\nsmtp_sasl_password_maps = [\"hash:"+pw+"\"]\nsmtp_sender_dependent_authentication = true\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--config", cfg,
		"--client-tls", "--client-tls-verify", pem, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())

	for _, from := range []string{"alice@a.example", "bob@a.example"} {
		mustSend(t, r.addr(), from, []string{outsideRcpt}, message("from "+from))
	}
	for from, login := range map[string]string{"alice@a.example": "alice-acct", "bob@a.example": "domain-acct"} {
		e := up.waitEvent("accept", 15*time.Second, func(e *maillog.Entry) bool { return strings.Trim(e.Get("from"), "<>") == from })
		if e == nil {
			t.Fatalf("the smarthost accepted nothing from %s; relay log:\n%s", from, r.stderr())
		}
		if got := e.Get("auth"); got != login {
			t.Errorf("the smarthost accepted %s's message under login %q; want %q", from, got, login)
		}
	}
	sink.WaitCount(t, 2, 15*time.Second)
}

// TestPasswordMapsForwardTo: the commonest Postfix relay in front of a
// provider, relayhost with a sasl_passwd entry for it, written as
// --forward-to and smtp_sasl_password_maps alone (no routing, no
// --client-auth): the smarthost's login comes from the table.
func TestPasswordMapsForwardTo(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)
	hop := "[" + strings.Replace(up.addr(), ":", "]:", 1)
	pw := writeFile(t, t.TempDir(), "sasl_passwd", hop+" alice@rk.test:app-password-1\n", 0o600)
	cfg := writeConfig(t, "[auth]\nsmtp_sasl_password_maps = [\"hash:"+pw+"\"]\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.addr(), "--forward-on-disconnect", "--config", cfg,
		"--client-tls", "--client-tls-verify", pem, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "carol@example.org", []string{outsideRcpt}, message("via the sasl_passwd login"))
	e := up.waitEvent("accept", 15*time.Second, func(e *maillog.Entry) bool { return strings.Trim(e.Get("from"), "<>") == "carol@example.org" })
	if e == nil || e.Get("auth") != "alice@rk.test" {
		t.Fatalf("the smarthost's accept line %v; want auth=alice@rk.test; relay log:\n%s", e, r.stderr())
	}
	sink.WaitCount(t, 1, 15*time.Second)
}
