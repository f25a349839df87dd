package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// pf25Upstream starts a smarthost that wants STARTTLS (with the
// certificate in pem) and a login as user/pass, and relays to sink.
func pf25Upstream(t *testing.T, sink *harness.Sink, pem, user, pass string) *relay {
	t.Helper()
	sec := writeFile(t, t.TempDir(), "server.secrets", "server plain "+user+" "+pass+"\n", 0o600)
	return startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--server-tls", "--server-tls-certificate", pem, "--server-tls-required", "--server-auth", sec,
		"--interface", "127.0.0.1", "--domain", "upstream.test", "--spool-dir", t.TempDir())
}

// pf25Session runs one session from src: EHLO helo, MAIL FROM from, then
// RCPT TO each of rcpts, and returns the replies from MAIL on (a failed
// connection or EHLO as its one entry).
func pf25Session(t *testing.T, addr, src, helo, from string, rcpts ...string) []string {
	t.Helper()
	c, greet, err := dialFrom(addr, src)
	if err != nil {
		return []string{fmt.Sprintf("dial: %v %q", err, greet)}
	}
	defer c.Close()
	r, err := c.cmd("EHLO %s", helo)
	if err != nil || r.code() != 250 {
		return []string{fmt.Sprintf("EHLO: %q %v", r, err)}
	}
	r, _ = c.cmd("MAIL FROM:%s", from)
	out := []string{r.String()}
	if r.code() != 250 {
		return out
	}
	for _, rc := range rcpts {
		if r, err = c.cmd("RCPT TO:%s", rc); err != nil {
			return append(out, "error: "+err.Error())
		}
		out = append(out, r.String())
	}
	c.cmd("QUIT")
	return out
}

// TestPF25MainCFRelay is a Postfix relay's main.cf moved to relaykeeper
// as docs/postfix-migration.md says, with its tables unchanged:
//
//	mynetworks = 127.0.0.1/32
//	relayhost = [smtp.gmail.com]:587          (a smarthost wanting TLS and AUTH)
//	smtp_sasl_auth_enable = yes
//	smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd
//	smtp_sasl_security_options = noanonymous
//	smtp_sender_dependent_authentication = yes
//	sender_dependent_relayhost_maps = hash:/etc/postfix/sender_relay
//	smtp_tls_security_level = encrypt
//	smtp_tls_CAfile = /etc/postfix/ca.pem
//	transport_maps = hash:/etc/postfix/transport   (special.example to a plain transport)
//	header_checks = pcre:/etc/postfix/header_checks
//	smtpd_client_restrictions = check_client_access cidr:/etc/postfix/client_access,
//	    reject_rbl_client bl.example
//	smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
//
// Mail from mynetworks goes to the relayhost under its login, a sender of
// other.example's to its own smarthost under its own, special.example's
// to the transport's next hop in plain text; the header check drops
// X-Originating-IP. Clients outside mynetworks relay nowhere, whatever
// the address form, and hear Postfix's replies from the cidr table and the
// DNS blocklist.
func TestPF25MainCFRelay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	sinkG, sinkO, sinkS := harness.StartSink(t, harness.SinkOptions{}), harness.StartSink(t, harness.SinkOptions{}), harness.StartSink(t, harness.SinkOptions{})
	upG := pf25Upstream(t, sinkG, pem, "me@gmail.test", "app-pw")
	upO := pf25Upstream(t, sinkO, pem, "other@other.test", "other-pw")
	hop := func(addr string) string { return "[" + strings.Replace(addr, ":", "]:", 1) }
	dns := harness.StartDNS(t, "3.0.0.127.bl.example. A 127.0.0.2\n3.0.0.127.bl.example. TXT \"see https://bl.example\"\n")

	sasl := writeFile(t, dir, "sasl_passwd", hop(upG.addr())+" me@gmail.test:app-pw\n"+hop(upO.addr())+" other@other.test:other-pw\n", 0o600)
	sdrh := writeFile(t, dir, "sender_relay", "@other.example "+hop(upO.addr())+"\n", 0o644)
	transport := writeFile(t, dir, "transport", "special.example plain:"+hop(sinkS.Addr())+"\n", 0o644)
	hc := writeFile(t, dir, "header_checks", "/^X-Originating-IP:/ IGNORE\n", 0o644)
	access := writeFile(t, dir, "client_access", "127.0.0.9 REJECT\n127.0.0.0/8 DUNNO\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf(`[forward]
to = %q
on_disconnect = true
[tls]
client = true
client_required = true
client_verify = %q
[auth]
smtp_sasl_password_maps = ["hash:%s"]
smtp_sender_dependent_authentication = true
[routing]
transport_maps = ["hash:%s"]
sender_dependent_relayhost_maps = ["hash:%s"]
[transports.plain]
tls = "none"
[policy]
mynetworks = ["127.0.0.1/32"]
dns_server = %q
client_restrictions = ["check_client_access cidr:%s", "reject_rbl_client bl.example"]
relay_restrictions = ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]
header_checks = "pcre:%s"
`, upG.addr(), pem, sasl, transport, sdrh, dns.Addr(), access, hc))

	body := "From: <x@example.org>\nTo: <y@example.net>\nSubject: main.cf\nX-Originating-IP: [192.0.2.7]\n\nhello\n"
	mustSend(t, r.addr(), "bob@example.org", []string{"friend@gmail.example"}, body)
	mustSend(t, r.addr(), "carol@other.example", []string{"friend@gmail.example"}, body)
	mustSend(t, r.addr(), "bob@example.org", []string{"user@special.example"}, body)

	for _, c := range []struct {
		up    *relay
		from  string
		login string
	}{{upG, "bob@example.org", "me@gmail.test"}, {upO, "carol@other.example", "other@other.test"}} {
		e := c.up.waitEvent("accept", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("from") == "<"+c.from+">" })
		if e == nil {
			t.Fatalf("no smarthost accepted the mail of %s; relay log:\n%s", c.from, r.stderr())
		}
		if got := e.Get("auth"); got != c.login {
			t.Errorf("the mail of %s reached its smarthost under login %q; want %q", c.from, got, c.login)
		}
	}
	sinkG.WaitCount(t, 1, 20*time.Second)
	sinkO.WaitCount(t, 1, 20*time.Second)
	sinkS.WaitCount(t, 1, 20*time.Second)
	for _, s := range []*harness.Sink{sinkG, sinkO, sinkS} {
		for _, m := range s.Messages() {
			if strings.Contains(m.Data, "X-Originating-IP") || !strings.Contains(m.Data, "Subject: main.cf") {
				t.Errorf("message at %s:\n%s\nwant Subject kept and X-Originating-IP dropped", s.Addr(), m.Data)
			}
		}
	}
	if got := sinkS.Messages()[0].To; len(got) != 1 || got[0] != "user@special.example" {
		t.Errorf("the transport's next hop got recipients %q; want user@special.example", got)
	}

	// Outside mynetworks, nothing is relayed.
	for _, rcpt := range []string{"<friend@gmail.example>", "<friend@GMAIL.EXAMPLE.>", "<friend%gmail.example@special.example>",
		"<@special.example:friend@gmail.example>", `<"friend@gmail.example"@special.example>`, "<friend@[192.0.2.1]>",
		"<gmail.example!friend@special.example>", "<user@special.example>"} {
		out := pf25Session(t, r.addr(), "127.0.0.2", "client.example", "<bob@example.org>", rcpt)
		if len(out) != 2 || !strings.HasPrefix(out[1], "554 5.7.1 ") || !strings.HasSuffix(out[1], ": Relay access denied") {
			t.Errorf("from 127.0.0.2, RCPT TO:%s = %q; want 554 5.7.1 ...: Relay access denied", rcpt, out)
		}
	}
	for ip, want := range map[string]string{
		"127.0.0.9": "554 5.7.1 <unknown[127.0.0.9]>: Client host rejected: Access denied",
		"127.0.0.3": "554 5.7.1 Service unavailable; Client host [127.0.0.3] blocked using bl.example; see https://bl.example",
	} {
		out := pf25Session(t, r.addr(), ip, "client.example", "<bob@example.org>", "<friend@gmail.example>")
		if len(out) != 2 || out[1] != want {
			t.Errorf("from %s: %q; want RCPT refused with %q", ip, out, want)
		}
	}
}
