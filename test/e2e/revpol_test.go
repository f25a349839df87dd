package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPolPostmasterUnknownDomain: with reject_unknown_recipient_domain
// and a --domain that DNS does not know (an internal name), RCPT
// TO:<Postmaster> from anyone is still accepted (RFC 5321 4.5.1), as
// Postfix skips its own domains; another unknown domain is refused.
func TestRevPolPostmasterUnknownDomain(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
mx.example.          MX   10 mail.mx.example.
`)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["mx.example"]
sender_restrictions = ["reject_unknown_sender_domain"]
recipient_restrictions = ["reject_unknown_recipient_domain", "permit_mynetworks", "reject_unauth_destination"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--domain", "relay.lan",
		"--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ from, rcpt, want string }{
		{"", "Postmaster", "250 "},
		{"a@mx.example", "postmaster@relay.lan", "250 "},
		{"postmaster@relay.lan", "b@mx.example", "250 "},
		{"a@mx.example", "b@nosuch.example", "450 4.1.2 <b@nosuch.example>: Recipient address rejected: Domain not found"},
	} {
		if a := tryMessage(t, r.addr(), "127.0.0.2", tc.from, tc.rcpt); !strings.HasPrefix(a.rcpt.String(), tc.want) {
			t.Errorf("MAIL FROM:<%s> RCPT TO:<%s> = %q; want %q", tc.from, tc.rcpt, a.rcpt, tc.want)
		}
	}
}

// TestRevPolBarePostmasterBeforeRestrictions: "RCPT TO:<Postmaster>"
// without a domain is accepted before any restriction, as Postfix's
// smtpd_check_rcpt returns before its lists for it (RFC 5321 4.5.1: a
// client refused for what it is can still reach the postmaster): a real
// Postfix 3.7 answers 250 to a client its check_client_access REJECTs.
// The address with the domain goes through the restrictions, in Postfix
// too.
func TestRevPolBarePostmasterBeforeRestrictions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clients := writeFile(t, dir, "clients", "127.0.0.3 REJECT blocked\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
client_restrictions = ["check_client_access hash:%s"]
recipient_restrictions = ["permit_mynetworks", "reject_unauth_destination"]
`, clients))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--domain", "relay.test",
		"--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ rcpt, want string }{
		{"Postmaster", "250 "},
		{"postmaster", "250 "},
		{"postmaster@relay.test", "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: blocked"},
		{"b@example.net", "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: blocked"},
	} {
		if a := tryMessage(t, r.addr(), "127.0.0.3", "a@example.org", tc.rcpt); !strings.HasPrefix(a.rcpt.String(), tc.want) {
			t.Errorf("from a refused client, RCPT TO:<%s> = %q; want %q", tc.rcpt, a.rcpt, tc.want)
		}
	}
}

// TestRevPolDiscardSkipsLaterRestrictions: as a private Postfix 3.7 does,
// once a DISCARD fired (in client, sender or recipient restrictions) the
// transaction's recipients are accepted without further restrictions; the
// message is thrown away anyway. RSET ends it.
func TestRevPolDiscardSkipsLaterRestrictions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clients := writeFile(t, dir, "clients", "127.0.0.2 DISCARD\n", 0o644)
	rcpts := writeFile(t, dir, "rcpts", "refused.example REJECT no\ndisc.example DISCARD\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
client_restrictions = ["check_client_access hash:%s"]
recipient_restrictions = ["check_recipient_access hash:%s", "permit_mynetworks", "reject_unauth_destination"]
`, clients, rcpts))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	if a := tryMessage(t, r.addr(), "127.0.0.2", "s@example.org", "a@refused.example"); a.rcpt.code() != 250 {
		t.Errorf("client DISCARD, then RCPT TO:<a@refused.example> = %q; want 250 (Postfix checks no further)", a.rcpt)
	}
	c := mustDial(t, r.addr(), "127.0.0.5")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<s@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<a@disc.example>")
	mustCmd(t, c, "250", "RCPT TO:<b@refused.example>")
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<s@example.org>")
	mustCmd(t, c, "554", "RCPT TO:<b@refused.example>")
}

// startRecordingPolicy is a policy server on 127.0.0.1 that answers DUNNO
// and sends each request's attributes on the channel.
func startRecordingPolicy(t *testing.T) (string, <-chan map[string]string) {
	return startAnsweringPolicy(t, func(map[string]string) string { return "DUNNO" })
}

// startAnsweringPolicy is a policy server on 127.0.0.1 that answers each
// request with the action answer gives and sends the request's attributes
// on the channel.
func startAnsweringPolicy(t *testing.T, answer func(attrs map[string]string) string) (string, <-chan map[string]string) {
	t.Helper()
	reqs := make(chan map[string]string, 16)
	addr := harness.ServeTCP(t, func(c net.Conn) {
		r, attrs := bufio.NewReader(c), map[string]string{}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if k, v, ok := strings.Cut(strings.TrimSuffix(l, "\n"), "="); ok {
				attrs[k] = v
				continue
			}
			reqs <- attrs
			c.Write([]byte("action=" + answer(attrs) + "\n\n"))
			attrs = map[string]string{}
		}
	})
	return addr, reqs
}

// TestRevPolPolicyProtocolName: protocol_name is SMTP for a client that
// said HELO and ESMTP after EHLO, as a private Postfix 3.7 sends it.
func TestRevPolPolicyProtocolName(t *testing.T) {
	t.Parallel()
	addr, reqs := startRecordingPolicy(t)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
recipient_restrictions = ["check_policy_service inet:%s", "permit_mynetworks", "reject"]
`, addr))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ greeting, want string }{{"HELO", "SMTP"}, {"EHLO", "ESMTP"}} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "%s client.test", tc.greeting)
		mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
		c.Close()
		select {
		case req := <-reqs:
			if req["protocol_name"] != tc.want {
				t.Errorf("after %s: protocol_name=%q; want %q", tc.greeting, req["protocol_name"], tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no policy request")
		}
	}
}
