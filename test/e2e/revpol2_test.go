package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevPol2RHSBLUTF8Sender: under SMTPUTF8 a sender's domain may be
// given in UTF-8 (U-labels); Postfix's reject_rhsbl_sender looks up its
// A-label form (midna_domain_to_ascii), which is what a domain list
// lists. The UTF-8 spelling must not slip a listed domain past the list.
func TestRevPol2RHSBLUTF8Sender(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
xn--bcher-kva.example.dbl.test.  A  127.0.1.2
`)
	r := startDNSRelay(t, dns, `relay_domains = ["relay.example"]
recipient_restrictions = ["reject_rhsbl_sender dbl.test", "reject_unauth_destination"]
`)
	for _, from := range []string{"a@xn--bcher-kva.example", "a@bücher.example", "a@BÜCHER.example"} {
		c := mustDial(t, r.addr(), "127.0.0.2")
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<%s> SMTPUTF8", from)
		got, _ := c.cmd("RCPT TO:<b@relay.example>")
		if !strings.HasPrefix(got.String(), "554 5.7.1 Service unavailable; Sender address") {
			t.Errorf("MAIL FROM:<%s>: RCPT = %q; want the list's 554", from, got)
		}
		c.Close()
	}
}

// TestRevPol2RelayRecipientForms: relay_recipient_maps looks a recipient
// up as Postfix does once trivial-rewrite resolved it: a quoted local
// part that needs no quoting, and a trailing dot after the domain, are
// the listed address; a routed address in a relay domain is not listed.
func TestRevPol2RelayRecipientForms(t *testing.T) {
	t.Parallel()
	r := startRelayRecipients(t, t.TempDir(), "alice@relay.example  OK\n", `"relay.example"`)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "client.test", "a@x.example", `"alice"@relay.example`, "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "alice@relay.example.", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "@a.example:alice@relay.example", "250 "},
		// From mynetworks (127.0.0.1), relaying is allowed anywhere, but
		// a routed address in a relay domain is still not a listed one.
		{"127.0.0.1", "client.test", "a@x.example", "carol%elsewhere.example@relay.example", "550 5.1.1 "},
		{"127.0.0.1", "client.test", "a@x.example", "carol@relay.example", "550 5.1.1 "},
	})
}

// TestRevPol2PipeliningClients: reject_unauth_pipelining must not refuse
// clients that pipeline as RFC 2920 allows: swaks --pipeline in plain
// text and over STARTTLS, and Go's net/smtp (no pipelining at all). A
// refused first BDAT throws its chunk away: the octets in it are never
// read as commands.
func TestRevPol2PipeliningClients(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining", "reject_multi_recipient_bounce"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--server-tls", "--server-tls-certificate", pem, "--config", cfg)
	for _, extra := range [][]string{{"--pipeline"}, {"--pipeline", "--tls"}} {
		args := append([]string{"--server", r.addr(), "--from", "a@example.org", "--to", "b@example.net,c@example.net", "--timeout", "10"}, extra...)
		out, code := harness.Swaks(t, args...)
		if code != 0 || !strings.Contains(out, "queued as") {
			t.Errorf("swaks %v: exit %d; output:\n%s", extra, code, out)
		}
	}
	if err := netSMTPSend(r.addr()); err != nil {
		t.Errorf("net/smtp: %v", err)
	}
	// TLS from the first octet (smtps): the socket is asked under TLS
	// there too.
	rs := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--server-tls", "--server-tls-connection", "--server-tls-certificate", pem, "--config", cfg)
	out, code := harness.Swaks(t, "--server", rs.addr(), "--tlsc", "--pipeline", "--from", "a@example.org", "--to", "b@example.net,c@example.net", "--timeout", "10")
	if code != 0 || !strings.Contains(out, "queued as") || strings.Contains(rs.stderr(), "improper command pipelining") {
		t.Errorf("swaks --tlsc --pipeline: exit %d; output:\n%s\nlog:\n%s", code, out, rs.stderr())
	}

	// BDAT refused by the data restrictions: its chunk, which holds
	// command lines, is thrown away, and the next reply is the NOOP's.
	c := mustDial(t, r.addr(), "127.0.0.2")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "250", "RCPT TO:<c@example.net>")
	chunk := "RSET\r\nMAIL FROM:<x@y.example>\r\n"
	if _, err := fmt.Fprintf(c.conn, "BDAT %d LAST\r\n%s", len(chunk), chunk); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.read(); !strings.HasPrefix(got.String(), "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce") {
		t.Errorf("BDAT: %q", got)
	}
	if got := mustCmd(t, c, "250", "NOOP"); !strings.HasPrefix(got.String(), "250 2.0.0") {
		t.Errorf("NOOP after the refused BDAT: %q", got)
	}
	// The transaction is still open (the chunk's RSET never ran).
	mustCmd(t, c, "503", "MAIL FROM:<a@example.org>")
	c.Close()
	if strings.Contains(r.stderr(), "improper command pipelining") {
		t.Errorf("a well-behaved client was taken for improper pipelining:\n%s", r.stderr())
	}
}

// netSMTPSend sends one message with Go's net/smtp, in plain text.
func netSMTPSend(addr string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail("a@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.net"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("Subject: t\r\n\r\nbody\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestRevPol2ClientNameLists: reject_rhsbl_client asks for the client's
// verified name, reject_rhsbl_reverse_client for its PTR name even when
// unverified, permit_rhswl_client permits a listed verified name but
// never opens the relay; Postfix's replies.
func TestRevPol2ClientNameLists(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
7.0.0.127.in-addr.arpa.   PTR  mx.friend.test.
mx.friend.test.           A    127.0.0.7
8.0.0.127.in-addr.arpa.   PTR  liar.bad.test.
9.0.0.127.in-addr.arpa.   PTR  host.bad.test.
host.bad.test.            A    127.0.0.9
mx.friend.test.rhswl.test. A   127.0.0.2
mx.friend.test.dbl.test.  A    127.0.1.2
liar.bad.test.dbl.test.   A    127.0.1.2
host.bad.test.dbl.test.   A    127.0.1.2
`)
	r := startDNSRelay(t, dns, `relay_domains = ["relay.example"]
recipient_restrictions = ["permit_rhswl_client rhswl.test", "reject_rhsbl_client dbl.test", "reject_rhsbl_reverse_client dbl.test", "reject_unauth_destination"]
`,
		"--client-names-server", dns.Addr())
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.7", "client.test", "a@x.example", "b@relay.example", "250 "},
		// Listed in dbl.test too: the allowlist skips the blocklist for a
		// relay domain only, never for a recipient it may not relay to.
		{"127.0.0.7", "client.test", "a@x.example", "b@elsewhere.example", "554 5.7.1 Service unavailable; Client host [mx.friend.test] blocked using dbl.test"},
		{"127.0.0.8", "client.test", "a@x.example", "b@relay.example", "554 5.7.1 Service unavailable; Unverified Client host [liar.bad.test] blocked using dbl.test"},
		{"127.0.0.9", "client.test", "a@x.example", "b@relay.example", "554 5.7.1 Service unavailable; Client host [host.bad.test] blocked using dbl.test"},
	})
}

// TestRevPol2DataRestrictionsProxy: in proxy mode a DATA refused by
// data_restrictions leaves the session in step with the client and the
// upstream server: after RSET the next transaction goes through.
func TestRevPol2DataRestrictionsProxy(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_multi_recipient_bounce"]
`)
	p := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	c := mustDial(t, p.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "250", "RCPT TO:<c@example.net>")
	mustCmd(t, c, "550", "DATA")
	mustCmd(t, c, "550", "BDAT 0 LAST")
	mustCmd(t, c, "250", "RSET")
	mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: t\r\n\r\nbody\r\n.")
	mustCmd(t, c, "221", "QUIT")
	if !waitFor(5*time.Second, func() bool { return sink.Count() == 1 }) {
		t.Errorf("sink has %d messages; want 1", sink.Count())
	}
}

// TestRevPol2UnknownHeloTempfail: reject_unknown_helo_hostname when the
// DNS fails for the HELO name is Postfix's defer_if_permit: 450 if the
// lists would permit, the later refusal itself if they refuse. A name
// with only an AAAA record, or only an MX, exists.
func TestRevPol2UnknownHeloTempfail(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
six.example.  AAAA  ::1
mx.example.   MX    10 six.example.
`)
	dns.SetRcode("tempfail.example.", 2)
	r := startDNSRelay(t, dns, `relay_domains = ["relay.example"]
helo_restrictions = ["reject_unknown_helo_hostname"]
relay_restrictions = ["reject_unauth_destination"]
`)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "tempfail.example", "a@x.example", "b@relay.example", "450 4.7.1 <tempfail.example>: Helo command rejected: Host not found"},
		{"127.0.0.2", "tempfail.example", "a@x.example", "b@elsewhere.example", "554 5.7.1 <b@elsewhere.example>: Relay access denied"},
		{"127.0.0.2", "six.example", "a@x.example", "b@relay.example", "250 "},
		{"127.0.0.2", "mx.example", "a@x.example", "b@relay.example", "250 "},
		{"127.0.0.2", "[127.0.0.2]", "a@x.example", "b@relay.example", "250 "},
	})
}

// startDNSRelay starts a relay whose [policy] asks dns for its lists and
// holds body (TOML), with extra command-line arguments.
func startDNSRelay(t *testing.T, dns *harness.DNSServer, body string, extra ...string) *relay {
	t.Helper()
	cfg := writeConfig(t, fmt.Sprintf("[policy]\ndns_server = %q\n%s", dns.Addr(), body))
	args := append([]string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg}, extra...)
	return startRelay(t, "127.0.0.1", args...)
}

// TestRevPol2RHSBLNoLookup: names that no domain list can list (a last
// label of digits, which Postfix skips, or a name that is not a host
// name) are not looked up, and are no "failed lookup" in the log: a
// client cannot fill the log with warnings by its choice of names.
func TestRevPol2RHSBLNoLookup(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, "")
	r := startDNSRelay(t, dns, `relay_domains = ["relay.example"]
recipient_restrictions = ["reject_rhsbl_helo dbl.test", "reject_rhsbl_sender dbl.test", "reject_unauth_destination"]
`)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "host.123", "a@x.example", "b@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@mail.42", "b@relay.example", "250 "},
	})
	if strings.Contains(r.stderr(), "DNS list lookup failed") {
		t.Errorf("a name no list can list is logged as a failed lookup:\n%s", r.stderr())
	}
	for _, q := range dns.Questions() {
		if strings.Contains(q, "123.dbl") || strings.Contains(q, "42.dbl") {
			t.Errorf("asked %s", q)
		}
	}
}

// TestRevPol2DataRefusedPipelined: a DATA that data_restrictions refuses,
// pipelined behind MAIL and RCPT as RFC 2920 allows, is answered after
// their replies, in order; so is a refused BDAT with its chunk.
func TestRevPol2DataRefusedPipelined(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining", "reject_multi_recipient_bounce"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	// DATA must be last in its group; BDAT need not be (RFC 3030).
	for _, last := range []string{"DATA\r\n", "BDAT 5 LAST\r\nabcdeNOOP\r\n"} {
		c := mustDial(t, r.addr(), "127.0.0.2")
		mustCmd(t, c, "250", "EHLO client.test")
		if _, err := c.conn.Write([]byte("MAIL FROM:<>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\n" + last)); err != nil {
			t.Fatal(err)
		}
		n := 4 + strings.Count(last, "NOOP")
		var got []string
		for range n {
			rep, err := c.read()
			if err != nil {
				t.Fatalf("%q: after %q: %v", last, got, err)
			}
			got = append(got, rep.String())
		}
		want := []string{"250", "250", "250", "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce", "250"}[:n]
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%q: replies %q; want %q", last, got, want)
				break
			}
		}
		c.Close()
	}
}

// TestRevPol2PipeliningTLS: under STARTTLS, message text sent with DATA
// in TLS records of its own, before the 354, is improper pipelining as
// in plain text: Postfix asks the socket under its TLS stream
// (peekfd) as well as what it decrypted. The client here writes both
// records in one TCP write, so that the server's first read takes the
// DATA record and part of the next and the rest waits in the kernel.
func TestRevPol2PipeliningTLS(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--server-tls", "--server-tls-certificate", pem, "--config", cfg)
	c := mustDial(t, r.addr(), "127.0.0.2")
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "220", "STARTTLS")
	held := heldTLS(t, c)
	mustCmd(t, c, "250", "EHLO client.test")
	mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	held.hold = true
	c.conn.Write([]byte("DATA\r\n"))
	c.conn.Write([]byte("Subject: t\r\n\r\n" + strings.Repeat("body line\r\n", 2000) + ".\r\n"))
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.read(); !strings.HasPrefix(got.String(), "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining") {
		t.Errorf("DATA with the text behind it over TLS = %q; want 503", got)
	}
}

// heldTLS makes c a TLS client, trusting any certificate, over a
// heldConn: after a 220 to STARTTLS, or at once for implicit TLS.
func heldTLS(t *testing.T, c *smtpClient) *heldConn {
	t.Helper()
	held := &heldConn{Conn: c.conn}
	tc := tls.Client(held, &tls.Config{InsecureSkipVerify: true, ServerName: "relay.test"})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, newReader(tc)
	return held
}

// heldConn keeps what is written while hold is set, and sends it in one
// write on release.
type heldConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (h *heldConn) Write(p []byte) (int, error) {
	if h.hold {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *heldConn) release() error {
	h.hold = false
	_, err := h.Conn.Write(h.buf)
	h.buf = nil
	return err
}

// TestRevPol2PostfixClientPipelining: Postfix's smtp client, which
// pipelines MAIL, RCPT and DATA (and QUIT behind the final dot), sends
// two messages with two recipients each through a relay with
// reject_unauth_pipelining in data_restrictions: both are sent, and the
// client is never taken for improper pipelining.
func TestRevPol2PostfixClientPipelining(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `[policy]
data_restrictions = ["reject_unauth_pipelining"]
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(r.addr())})
	for _, subj := range []string{"one", "two"} {
		out, code := harness.Swaks(t, "--server", pf.Addr(), "--from", "alice@example.org", "--to", "bob@example.net,carol@example.net",
			"--header", "Subject: "+subj)
		if code != 0 {
			t.Fatalf("swaks to Postfix: exit %d\n%s", code, out)
		}
	}
	for range 2 {
		pf.WaitLog(t, "status=sent", 30*time.Second)
	}
	pf.WaitEmpty(t, 30*time.Second)
	if strings.Contains(r.stderr(), "improper command pipelining") {
		t.Errorf("Postfix's smtp client was taken for improper pipelining:\n%s", r.stderr())
	}
}

// TestRevPol2RHSBLCache: the domain lists are asked once for a sender's
// domain, not once for each recipient of the transaction (Postfix keeps
// DNS list answers in its smtpd's cache): a client cannot multiply the
// relay's queries to a list, nor, when the list does not answer, its
// wait, by the number of its recipients.
func TestRevPol2RHSBLCache(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
bad.example.dbl.test.  A    127.0.1.2
bad.example.dbl.test.  TXT  "listed"
`)
	r := startDNSRelay(t, dns, `relay_domains = ["relay.example"]
recipient_restrictions = ["reject_rhsbl_sender dbl.test", "reject_unauth_destination"]
`)
	for _, from := range []string{"a@bad.example", "a@good.example"} {
		c := mustDial(t, r.addr(), "127.0.0.2")
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<%s>", from)
		for i := range 5 {
			c.cmd("RCPT TO:<r%d@relay.example>", i)
		}
		c.Close()
	}
	count := map[string]int{}
	for _, q := range dns.Questions() {
		count[q]++
	}
	for q, n := range count {
		if n > 1 {
			t.Errorf("asked %d times: %s (all questions: %v)", n, q, dns.Questions())
		}
	}
}
