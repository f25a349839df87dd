package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// dnsListsZone is a test DNS server's data for the domain lists: a
// domain blocklist dbl.test (RHSBL), an address allowlist dnswl.test
// that lists 127.0.0.7, and the HELO names' addresses.
const dnsListsZone = `
bad.example.dbl.test.        A    127.0.1.2
bad.example.dbl.test.        TXT  "https://dbl.test/lookup/bad.example"
filtered.example.dbl.test.   A    127.0.0.9
spamhelo.example.dbl.test.   A    127.0.1.2
rcptbad.example.dbl.test.    A    127.0.1.3
7.0.0.127.dnswl.test.        A    127.0.10.2
client.test.                 A    127.0.0.1
spamhelo.example.            A    127.0.0.1
`

// dnsListsCase is one attempt: where from, what HELO, sender and
// recipient, and the reply the recipient must get.
type dnsListsCase struct{ ip, helo, from, rcpt, want string }

func runDNSListsCases(t *testing.T, r *relay, cases []dnsListsCase) {
	t.Helper()
	for _, tc := range cases {
		c := mustDial(t, r.addr(), tc.ip)
		mustCmd(t, c, "250", "EHLO %s", tc.helo)
		mustCmd(t, c, "250", "MAIL FROM:<%s>", tc.from)
		got, _ := c.cmd("RCPT TO:<%s>", tc.rcpt)
		if !strings.HasPrefix(got.String(), tc.want) {
			t.Errorf("from %s, EHLO %s, MAIL FROM:<%s>, RCPT TO:<%s> = %q; want %q", tc.ip, tc.helo, tc.from, tc.rcpt, got, tc.want)
		}
		c.Close()
	}
}

// TestDNSListsRHSBL: Postfix's reject_rhsbl_sender, reject_rhsbl_helo and
// reject_rhsbl_recipient against a test DNS server, with Postfix's reply
// (default_rbl_reply) and its result filter; a list that fails lets the
// client through (and says so in the log), as Postfix's does. The old
// names reject_non_fqdn_hostname and reject_unknown_hostname are
// Postfix's reject_*_helo_hostname.
func TestDNSListsRHSBL(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, dnsListsZone)
	dns.SetRcode("servfail.example.dbl.test.", 2)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["relay.example", "rcptbad.example"]
helo_restrictions = ["reject_non_fqdn_hostname", "reject_unknown_hostname"]
recipient_restrictions = ["reject_rhsbl_helo dbl.test", "reject_rhsbl_sender dbl.test=127.0.1.[2..99]", "reject_rhsbl_recipient dbl.test", "reject_unauth_destination"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "client.test", "a@good.example", "b@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@bad.example", "b@relay.example",
			"554 5.7.1 Service unavailable; Sender address [a@bad.example] blocked using dbl.test; https://dbl.test/lookup/bad.example"},
		// Listed, but with a code the filter leaves out.
		{"127.0.0.2", "client.test", "a@filtered.example", "b@relay.example", "250 "},
		{"127.0.0.2", "client.test", "", "b@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@[192.0.2.1]", "b@relay.example", "250 "},
		{"127.0.0.2", "spamhelo.example", "a@good.example", "b@relay.example",
			"554 5.7.1 Service unavailable; Helo command [spamhelo.example] blocked using dbl.test"},
		{"127.0.0.2", "[127.0.0.2]", "a@good.example", "b@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@good.example", "b@rcptbad.example",
			"554 5.7.1 Service unavailable; Recipient address [b@rcptbad.example] blocked using dbl.test"},
		{"127.0.0.2", "client.test", "a@servfail.example", "b@relay.example", "250 "},
		{"127.0.0.2", "nx.example", "a@good.example", "b@relay.example", "450 4.7.1 <nx.example>: Helo command rejected: Host not found"},
		{"127.0.0.2", "localhost", "a@good.example", "b@relay.example", "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"},
	})
	if !strings.Contains(r.stderr(), "servfail.example") {
		t.Errorf("the failed lookup is not in the log:\n%s", r.stderr())
	}
}

// TestDNSListsAllowlist: permit_dnswl_client lets a listed client past a
// later refusal, never past reject_unauth_destination (Postfix's rule:
// an allowlist cannot open the relay), and a list that cannot be asked
// turns a later refusal into 450 (DEFER_IF_REJECT).
func TestDNSListsAllowlist(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, dnsListsZone)
	dns.SetRcode("7.0.0.127.failwl.test.", 2)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["relay.example"]
recipient_restrictions = ["permit_dnswl_client dnswl.test", "permit_dnswl_client failwl.test=127.0.[0..255].[1..3]", "reject_unauth_destination", "reject"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.7", "client.test", "a@good.example", "b@relay.example", "250 "},
		{"127.0.0.7", "client.test", "a@good.example", "b@elsewhere.example", "554 5.7.1 <b@elsewhere.example>: Relay access denied"},
		{"127.0.0.8", "client.test", "a@good.example", "b@relay.example", "554 5.7.1 <b@relay.example>: Recipient address rejected: Access denied"},
	})
	// 127.0.0.7 is not in failwl.test's answer at all (dnswl.test permits
	// it first); ask failwl.test first for a client it fails on.
	cfg2 := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["relay.example"]
recipient_restrictions = ["permit_dnswl_client failwl.test", "reject_unauth_destination", "reject"]
`, dns.Addr()))
	r2 := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg2)
	runDNSListsCases(t, r2, []dnsListsCase{
		{"127.0.0.7", "client.test", "a@good.example", "b@relay.example", "450 4.7.1 <127.0.0.7>: Client host rejected: Service unavailable"},
		// Relay access is refused for good whatever the allowlist says.
		{"127.0.0.7", "client.test", "a@good.example", "b@elsewhere.example", "554 5.7.1 <b@elsewhere.example>: Relay access denied"},
	})
}

// TestRelayRecipientMaps: Postfix's relay_recipient_maps. A recipient
// in relay_domains must be listed (by address, by the address without
// its extension, or by "@domain"), or RCPT hears Postfix's 550 5.1.1;
// recipients outside relay_domains, which mynetworks relays, are not
// looked up. The table is read again when it changes.
func TestRelayRecipientMaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := startRelayRecipients(t, dir, "alice@relay.example  OK\nbob@relay.example x\n@open.example x\n", `"relay.example", "open.example"`)
	runDNSListsCases(t, r, []dnsListsCase{
		{"127.0.0.2", "client.test", "a@x.example", "alice@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "alice+news@relay.example", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "BOB@Relay.Example", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "carol@relay.example",
			"550 5.1.1 <carol@relay.example>: Recipient address rejected: User unknown in relay recipient table"},
		{"127.0.0.2", "client.test", "a@x.example", "anyone@open.example", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "x@elsewhere.example", "250 "},
		{"127.0.0.2", "client.test", "a@x.example", "Postmaster", "250 "},
	})
	writeFile(t, dir, "relay_recipients", "alice@relay.example  OK\ncarol@relay.example OK\n", 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := mustDial(t, r.addr(), "127.0.0.2")
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
		got, _ := c.cmd("RCPT TO:<carol@relay.example>")
		c.Close()
		if got.code() == 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carol still refused after the table changed: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startRelayRecipients starts a relay whose relay_domains are domains (TOML
// list items) and whose relay_recipient_maps is a hash table in dir that
// holds table, with recipient_delimiter "+".
func startRelayRecipients(t *testing.T, dir, table, domains string) *relay {
	t.Helper()
	tab := writeFile(t, dir, "relay_recipients", table, 0o644)
	cfg := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf(`recipient_delimiter = "+"
[policy]
relay_domains = [%s]
relay_recipient_maps = ["hash:%s"]
`, domains, tab), 0o644)
	return startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
}

// TestDNSListsAskedOncePerSession: an address list is asked about the
// client once in a session however many recipients it names, as
// Postfix's smtpd caches the answer; a listed client is refused at every
// RCPT all the same.
func TestDNSListsAskedOncePerSession(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, blZone)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
dns_server = %q
relay_domains = ["relay.example"]
recipient_restrictions = ["reject_rbl_client bl.example", "permit_dnswl_client wl.example"]
`, dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg)
	for _, ip := range []string{"127.0.0.3", "127.0.0.2"} {
		c := mustDial(t, r.addr(), ip)
		mustCmd(t, c, "250", "EHLO client.test")
		mustCmd(t, c, "250", "MAIL FROM:<a@x.example>")
		for i := range 5 {
			got, _ := c.cmd("RCPT TO:<u%d@relay.example>", i)
			if want := map[string]int{"127.0.0.3": 250, "127.0.0.2": 554}[ip]; got.code() != want {
				t.Errorf("%s, recipient %d: %q; want %d", ip, i, got, want)
			}
		}
		c.Close()
		byZone := map[string]int{}
		for _, q := range questionsFor(dns, ip) {
			if strings.Contains(q, " A") || strings.HasSuffix(strings.Fields(q)[0], ".") {
				byZone[strings.Fields(q)[0]+" "+strings.Join(strings.Fields(q)[1:], " ")]++
			}
		}
		for q, n := range byZone {
			if n != 1 {
				t.Errorf("%s: asked %q %d times in one session; want once", ip, q, n)
			}
		}
		if len(byZone) == 0 {
			t.Errorf("%s: no question asked at all", ip)
		}
	}
}
