package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plantSelectorMessage writes a queued message in E-MailRelay's spool
// format whose envelope names a client account selector (what a filter
// script writes there), and returns its id.
func plantSelectorMessage(t *testing.T, spool string, n int, from, selector string) string {
	t.Helper()
	id := fmt.Sprintf("%08X%08X", 0x5E1EC700, n)
	if err := os.WriteFile(filepath.Join(spool, id+".content"), []byte("Subject: selector "+selector+"\r\n\r\nbody\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
		"X-MailRelay-From: " + from + "\r\nX-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: bob@example.net\r\n" +
		"X-MailRelay-Authentication: \r\nX-MailRelay-Client: 127.0.0.1\r\nX-MailRelay-MailFromAuthIn: \r\n" +
		"X-MailRelay-MailFromAuthOut: \r\nX-MailRelay-ForwardTo: \r\nX-MailRelay-ForwardToAddress: \r\n" +
		"X-MailRelay-ClientAccountSelector: " + selector + "\r\nX-MailRelay-End: 1\r\n" +
		"X-Relaykeeper-Arrival: " + time.Now().UTC().Format(time.RFC3339Nano) + "\r\n"
	if err := os.WriteFile(filepath.Join(spool, id+".envelope"), []byte(env), 0o640); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRevAuthClientAccountSelector: docs/auth.md (and E-MailRelay) say a
// message whose envelope names an account selector is sent with the client
// line of that selector, the others with the line without one, and that
// "client plain = = SELECTOR" sends without logging in. The relay ignored
// the selector: every message went out under the default account, so
// mail a filter had marked for the "work" account left under the
// personal one, and mail marked for no login carried the default
// password. A selector with no line in the file must not fall back to the
// default account either: that message waits, deferred.
func TestRevAuthClientAccountSelector(t *testing.T) {
	t.Parallel()
	t.Run("smarthost", func(t *testing.T) { t.Parallel(); checkAccountSelectors(t) })
	// With routing, the smarthost is reached through the router's
	// default transport.
	t.Run("routed", func(t *testing.T) {
		t.Parallel()
		checkAccountSelectors(t, "--config", writeConfig(t, "[routing]\ntransport_maps = [\"inline:{ other.example=error:nope }\"]\n"))
	})
}

func checkAccountSelectors(t *testing.T, extra ...string) {
	up := newRawUpstream(t)
	up.authOK = true
	up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN"} }
	sec := writeFile(t, t.TempDir(), "client.secrets",
		"client plain home@rk.test home-pw\nclient plain work@rk.test work-pw work\nclient plain = = direct\n", 0o600)
	spool := t.TempDir()
	cases := map[string]string{ // sender: selector
		"default@example.org": "",
		"work@example.org":    "work",
		"direct@example.org":  "direct",
		"nosuch@example.org":  "nosuch",
	}
	ids := map[string]string{}
	n := 0
	for from, sel := range cases {
		n++
		ids[from] = plantSelectorMessage(t, spool, n, from, sel)
	}
	// A smarthost on 127.0.0.1 with no TLS switch gets the login without
	// TLS (docs/tls.md), so the raw upstream can take it.
	code, out, p := runClient(t, append([]string{"--as-client", up.addr(), "--client-auth", sec, "--spool-dir", spool}, extra...)...)
	t.Logf("--as-client exit %d: %s\nstderr:\n%s", code, out, p.Stderr())

	// The login each sender's message was sent under.
	logins := map[string]string{}
	for from, creds := range plainLogins(up) {
		logins[from] = "(none)"
		if creds != nil {
			logins[from] = creds[0]
		}
	}
	want := map[string]string{
		"default@example.org": "home@rk.test",
		"work@example.org":    "work@rk.test",
		"direct@example.org":  "(none)",
	}
	for from, w := range want {
		if got, ok := logins[from]; !ok || got != w {
			t.Errorf("message from %s (selector %q) sent under login %q (sent: %v); want %q", from, cases[from], got, ok, w)
		}
	}
	if got, ok := logins["nosuch@example.org"]; ok {
		t.Errorf("message with selector \"nosuch\" (no client line) was sent under login %q; want it kept in the spool", got)
	}
	if state, env := waitEnvelope(t, spool, ids["nosuch@example.org"], 5*time.Second, func(s string, _ envelope) bool { return s == "envelope" }); state != "envelope" {
		t.Errorf("message with selector \"nosuch\" is %s; want it waiting in the spool:\n%s", state, env)
	}
}

// TestRevAuthEmailRelayEnvelopeWaits: a message that E-MailRelay (or a
// script writing its format) left in the spool has no X-Relaykeeper-Arrival
// line. Its age was counted from the year 1, so the first temporary
// refusal bounced it as "expired after 106751 days in the queue", and the
// mail log said delay=9223372036.85. It must wait and be retried, its age
// counted from its content file's time.
func TestRevAuthEmailRelayEnvelopeWaits(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.rcptReply = func(int, string) string { return "451 4.3.0 try again later" }
	spool := t.TempDir()
	// E-MailRelay's name carries the time it was made (rev-er's fix reads
	// it): a message of now.
	id := fmt.Sprintf("emailrelay.1234.%d.1", time.Now().Unix())
	if err := os.WriteFile(filepath.Join(spool, id+".content"), []byte("Subject: from E-MailRelay\r\n\r\nbody\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
		"X-MailRelay-From: alice@example.org\r\nX-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: bob@example.net\r\n" +
		"X-MailRelay-Authentication: \r\nX-MailRelay-Client: 127.0.0.1\r\nX-MailRelay-MailFromAuthIn: \r\n" +
		"X-MailRelay-MailFromAuthOut: \r\nX-MailRelay-End: 1\r\n"
	if err := os.WriteFile(filepath.Join(spool, id+".envelope"), []byte(env), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, p := runClient(t, "--as-client", up.addr(), "--spool-dir", spool)
	t.Logf("--as-client exit %d: %s", code, out)
	if strings.Contains(p.Stderr(), "expired") || strings.Contains(p.Stderr(), "delay=9223372036") {
		t.Errorf("an E-MailRelay envelope was taken for ancient:\n%s", p.Stderr())
	}
	if state, e := waitEnvelope(t, spool, id, 5*time.Second, func(s string, _ envelope) bool { return s == "envelope" }); state != "envelope" {
		t.Errorf("message %s is %s after a 451; want it waiting in the spool:\n%s", id, state, e)
	}
}

// TestRevAuthDeferUnauthDestination: Postfix's default relay restrictions
// since 2.10, and the line Debian's main.cf ships, are "permit_mynetworks,
// permit_sasl_authenticated, defer_unauth_destination". Pasted into
// relay_restrictions, the relay refused to start, saying the list had no
// reject_unauth_destination and "anyone could relay anywhere". As in
// Postfix it must close the relay with a temporary refusal, "454 4.7.1
// <addr>: Relay access denied", and let relay_domains through.
func TestRevAuthDeferUnauthDestination(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n"+
		`relay_restrictions = ["permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"]`+"\n")
	for _, p := range []relayProbe{
		{"victim@elsewhere.example", "454 4.7.1 <victim@elsewhere.example>: Relay access denied"},
		{"victim%elsewhere.example@relay.example", "454 4.7.1 <victim%elsewhere.example@relay.example>: Relay access denied"},
		{"victim@[192.0.2.77]", "454 4.7.1 <victim@[192.0.2.77]>: Relay access denied"},
		{"user@relay.example", "250"},
	} {
		if got, _ := probeRcpt(t, r.addr(), p.rcpt); !replyIs(got, p.want) {
			t.Errorf("RCPT TO:<%s> from outside mynetworks = %q; want %q", p.rcpt, got, p.want)
		}
	}
}

// TestRevAuthClientAuthInline: E-MailRelay takes the smarthost's login on
// the command line too, --client-auth=plain:BASE64-USER:BASE64-PASSWORD
// (its reference's "inline form"). relaykeeper, which runs E-MailRelay's
// command lines, took it for a file name and stopped: "open
// plain:...: no such file or directory". It must log in with it.
func TestRevAuthClientAuthInline(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.authOK = true
	up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN"} }
	spool := t.TempDir()
	plantSelectorMessage(t, spool, 1, "inline@example.org", "")
	b := base64.StdEncoding.EncodeToString
	code, out, p := runClient(t, "--as-client", up.addr(), "--client-auth=plain:"+b([]byte("me@rk.test"))+":"+b([]byte("s3cret pw")),
		"--spool-dir", spool)
	if code != 0 {
		t.Fatalf("--as-client with the inline --client-auth: exit %d, %s\n%s", code, out, p.Stderr())
	}
	want := "AUTH PLAIN " + b([]byte("\x00me@rk.test\x00s3cret pw"))
	for _, lines := range up.connLines() {
		for _, l := range lines {
			if l == want {
				return
			}
		}
	}
	t.Errorf("the upstream got no %q; lines %v", want, up.connLines())
}

// plainLogins returns, for each sender whose message up accepted, the
// user and password its session logged in with (AUTH PLAIN), or nil for
// a session without a login.
func plainLogins(up *rawUpstream) map[string][]string {
	out := map[string][]string{}
	conns := up.connLines()
	for _, m := range up.messages() {
		out[m.from] = nil
		for _, l := range conns[m.conn] {
			if b64, ok := strings.CutPrefix(l, "AUTH PLAIN "); ok {
				raw, _ := base64.StdEncoding.DecodeString(b64)
				parts := strings.Split(string(raw), "\x00")
				out[m.from] = parts[len(parts)-2:]
			}
		}
	}
	return out
}
