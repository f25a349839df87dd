package e2e

import (
	"fmt"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPolicyServicePostgrey: greylisting with Debian's postgrey as the
// policy service (check_policy_service inet:...). The first attempt hears
// postgrey's DEFER_IF_PERMIT in Postfix's words; the retry after the delay
// is let through, with the X-Greylist header postgrey asks to PREPEND
// before the relay's Received header.
func TestPolicyServicePostgrey(t *testing.T) {
	t.Parallel()
	addr := startPostgrey(t, 2)

	sink := harness.StartSink(t, harness.SinkOptions{})
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
recipient_restrictions = ["check_policy_service inet:%s", "permit_mynetworks", "reject"]
`, addr))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)

	a := tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
	// 4.2.0 is postgrey's choice for a Postfix that sends etrn_domain
	// (2.3 and later), as the mail logs of Postfix with postgrey show.
	want := "450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.net.html"
	if a.rcpt.String() != want {
		t.Fatalf("first RCPT = %q; want postgrey's greylisting %q", a.rcpt, want)
	}
	time.Sleep(3 * time.Second) // postgrey's --delay
	a = tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
	if a.rcpt.code() != 250 || a.final.code() != 250 {
		t.Fatalf("retry after the delay: RCPT %q, end of data %q; want 250, 250", a.rcpt, a.final)
	}
	sink.WaitCount(t, 1, 10*time.Second)
	if data := sink.Messages()[0].Data; !strings.HasPrefix(data, "X-Greylist: delayed ") ||
		!strings.Contains(data, "by postgrey-") || !strings.Contains(data, "\nReceived: from ") {
		t.Errorf("the message upstream begins %q; want postgrey's X-Greylist header before the Received header", head(data))
	}
}

// TestUnknownDomains: reject_unknown_sender_domain and
// reject_unknown_recipient_domain with a test DNS server, in Postfix's
// words and with its default codes: 450 for a domain that does not exist
// or has neither MX nor address, a null MX refused for good (550 5.7.27
// for a sender, 556 5.1.10 for a recipient), and a DNS failure deferred
// only if nothing else refuses (defer_if_permit).
func TestUnknownDomains(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
mx.example.          MX   10 mail.mx.example.
a.example.           A    192.0.2.1
nullmx.example.      MX   0 .
txtonly.example.     TXT  "no mail here"
`)
	dns.SetRcode("servfail.example.", 2)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
sender_restrictions = ["reject_unknown_sender_domain"]
recipient_restrictions = ["reject_unknown_recipient_domain", "check_recipient_access hash:%s", "permit_mynetworks", "reject"]
`, dns.Addr(), writeFile(t, t.TempDir(), "rcpt", "refused@mx.example  REJECT\n", 0o644)))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ from, rcpt, want string }{
		{"a@mx.example", "b@a.example", "250 "},
		{"<>", "b@mx.example", "250 "},
		{"a@nxdomain.example", "b@mx.example", "450 4.1.8 <a@nxdomain.example>: Sender address rejected: Domain not found"},
		{"a@txtonly.example", "b@mx.example", "450 4.1.8 <a@txtonly.example>: Sender address rejected: Domain not found"},
		{"a@nullmx.example", "b@mx.example", "550 5.7.27 <a@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)"},
		{"a@mx.example", "b@nullmx.example", "556 5.1.10 <b@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)"},
		{"a@mx.example", "b@nxdomain.example", "450 4.1.2 <b@nxdomain.example>: Recipient address rejected: Domain not found"},
		{"a@servfail.example", "b@mx.example", "450 4.1.8 <a@servfail.example>: Sender address rejected: Domain not found"},
		// DNS failed for the sender, and a later restriction refuses
		// the recipient: its refusal is the answer (defer_if_permit).
		{"a@servfail.example", "refused@mx.example", "554 5.7.1 <refused@mx.example>: Recipient address rejected: Access denied"},
	} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.test")
		from := tc.from
		if from != "<>" {
			from = "<" + from + ">"
		}
		mustCmd(t, c, "250", "MAIL FROM:%s", from)
		got, _ := c.cmd("RCPT TO:<%s>", tc.rcpt)
		if !strings.HasPrefix(got.String(), tc.want) {
			t.Errorf("MAIL FROM:%s RCPT TO:<%s> = %q; want %q", from, tc.rcpt, got, tc.want)
		}
		c.Close()
	}
}

// TestRestrictionClassesProtectedDestinations: Postfix's
// RESTRICTION_CLASS_README example, protected destinations, with its
// tables as written: only senders in example.com may mail
// all@example.com; anyone may mail other recipients. A class that does
// not compile stops the relay with its file and line.
func TestRestrictionClassesProtectedDestinations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	protected := writeFile(t, dir, "protected_destinations", "all@example.com     insiders_only\nall@example.net     insiders_only\n", 0o644)
	insiders := writeFile(t, dir, "insiders", "example.com OK matches example.com and subdomains\nexample.net OK matches example.net and subdomains\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
relay_domains = ["example.com", "example.net"]
recipient_restrictions = ["check_recipient_access hash:%s", "permit_mynetworks", "reject_unauth_destination"]
[policy.restriction_classes]
insiders_only = ["check_sender_access hash:%s", "reject"]
`, protected, insiders))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, tc := range []struct{ from, rcpt, want string }{
		{"boss@example.com", "all@example.com", "250 "},
		{"boss@sub.example.net", "all@example.net", "250 "},
		{"outsider@example.org", "all@example.com", "554 5.7.1 <all@example.com>: Recipient address rejected: Access denied"},
		{"outsider@example.org", "someone@example.com", "250 "},
	} {
		a := tryMessage(t, r.addr(), "127.0.0.1", tc.from, tc.rcpt)
		if !strings.HasPrefix(a.rcpt.String(), tc.want) {
			t.Errorf("MAIL FROM:<%s> RCPT TO:<%s> = %q; want %q", tc.from, tc.rcpt, a.rcpt, tc.want)
		}
	}

	bad := writeFile(t, dir, "bad.toml", "[policy]\n[policy.restriction_classes]\ninsiders_only = [\"frobnicate\"]\n", 0o644)
	_, out, code := opsCmd(t, "", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", bad)
	if code == 0 || !strings.Contains(out, "frobnicate") || !strings.Contains(out, "insiders_only") {
		t.Errorf("a class that does not compile: exit %d, stderr %q; want a refusal naming the class and the item", code, out)
	}
}

// TestUnknownClientHostname: reject_unknown_reverse_client_hostname and
// reject_unknown_client_hostname against a test DNS server, with
// smtp.client_names off (the restrictions have the names looked up), in
// Postfix's words and with its default 450: 127.0.0.7's PTR name leads
// back to it, 127.0.0.8's does not, 127.0.0.9 has none, and for
// 127.0.0.10 the DNS server fails (a deferral only if nothing else
// refuses).
func TestUnknownClientHostname(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, `
7.0.0.127.in-addr.arpa.  PTR  mx.friend.test.
8.0.0.127.in-addr.arpa.  PTR  mx.friend.test.
mx.friend.test.          A    127.0.0.7
`)
	dns.SetRcode("10.0.0.127.in-addr.arpa.", 2)
	start := func(restriction string) *relay {
		cfg := writeConfig(t, fmt.Sprintf("[smtp]\ndns_server = %q\n[policy]\nclient_restrictions = [%q]\n", dns.Addr(), restriction))
		return startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	}
	reverse, forward := start("reject_unknown_reverse_client_hostname"), start("reject_unknown_client_hostname")
	for _, tc := range []struct {
		r        *relay
		from     string
		want     string
		relayFor string
	}{
		{reverse, "127.0.0.7", "250 ", "reverse"},
		{reverse, "127.0.0.8", "250 ", "reverse"},
		{reverse, "127.0.0.9", "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.9]", "reverse"},
		{reverse, "127.0.0.10", "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.10]", "reverse"},
		{forward, "127.0.0.7", "250 ", "forward"},
		{forward, "127.0.0.8", "450 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.8]", "forward"},
		{forward, "127.0.0.9", "450 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.9]", "forward"},
	} {
		a := tryMessage(t, tc.r.addr(), tc.from, "a@example.org", "b@example.net")
		if !strings.HasPrefix(a.rcpt.String(), tc.want) {
			t.Errorf("%s relay, client %s: RCPT = %q; want %q", tc.relayFor, tc.from, a.rcpt, tc.want)
		}
	}
}

// TestPolicyServiceBraceForm: Postfix 3.0's check_policy_service { ... }
// form from a config file, against postgrey: its settings are read and the
// service answers as before; a service that is down answers with the
// item's default_action (DUNNO: the mail goes through, fail open), where
// the plain form answers 451 4.3.5.
func TestPolicyServiceBraceForm(t *testing.T) {
	t.Parallel()
	addr := startPostgrey(t, 60)
	down := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))

	for _, c := range []struct {
		item, want string
	}{
		{"check_policy_service { inet:" + addr + ", timeout=10s, try_limit=1, policy_context=relay }",
			"450 4.2.0 <bob@example.net>: Recipient address rejected: Greylisted"},
		{"check_policy_service { inet:" + down + ", default_action=DUNNO }", "250"},
		{"check_policy_service inet:" + down, "451 4.3.5 <bob@example.net>: Recipient address rejected: Server configuration problem"},
	} {
		r := startPolicyRelay(t, fmt.Sprintf("[policy]\nrecipient_restrictions = [%q, \"permit_mynetworks\", \"reject\"]\n", c.item))
		a := tryMessage(t, r.addr(), "127.0.0.1", "alice@example.org", "bob@example.net")
		if !strings.HasPrefix(a.rcpt.String(), c.want) {
			t.Errorf("%s: RCPT = %q; want %q", c.item, a.rcpt, c.want)
		}
	}
}

// startPostgrey starts Debian's postgrey on a free loopback port, greylisting
// for delay seconds, and returns its address.
func startPostgrey(t *testing.T, delay int) string {
	t.Helper()
	bin := harness.Need(t, "postgrey")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	harness.Start(t, bin, "--inet="+addr, "--dbdir="+t.TempDir(), fmt.Sprintf("--delay=%d", delay), "--user="+me.Username,
		"--group="+grp.Name, "--hostname=policy.test", "--auto-whitelist-clients=0")
	harness.WaitPort(t, addr, 20*time.Second)
	return addr
}
