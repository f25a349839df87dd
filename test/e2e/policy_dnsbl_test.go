package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// blZone lists 127.0.0.2 in bl.example, with a TXT record.
const blZone = `
2.0.0.127.bl.example. A   127.0.0.2
2.0.0.127.bl.example. TXT "listed in bl.example, see https://bl.example/127.0.0.2"
`

const blText = "listed in bl.example, see https://bl.example/127.0.0.2"

// dnsblCase is one client of a DNSBL test: where it connects from and what
// its RCPT must get.
type dnsblCase struct {
	ip, want string
}

// runDNSBLCases sends one message attempt per case and checks the RCPT
// reply; refusals must be logged as the client heard them.
func runDNSBLCases(t *testing.T, r *relay, cases []dnsblCase) {
	t.Helper()
	for _, c := range cases {
		start := time.Now()
		a := tryMessage(t, r.addr(), c.ip, "sender@example.org", "user@relay.example")
		if !replyIs(a.rcpt, c.want) {
			t.Errorf("from %s: RCPT = %q (after %v); want %q", c.ip, a.rcpt, time.Since(start).Round(time.Millisecond), c.want)
		}
		if a.rcpt.code() == 250 {
			if a.final.code() != 250 {
				t.Errorf("from %s: final reply %q; want 250", c.ip, a.final)
			}
			continue
		}
		es := clientRejects(r, a.client)
		if len(es) != 1 || es[0].Get("stage") != "rcpt" || es[0].Get("reply") != a.rcpt.String() {
			t.Errorf("reject lines for %s: %v; want one stage=rcpt reply=%q", a.client, fields(es), a.rcpt.String())
		}
	}
}

// questionsFor returns the questions the DNS server was asked about ip.
func questionsFor(dns *harness.DNSServer, ip string) []string {
	o := strings.Split(ip, ".")
	prefix := o[3] + "." + o[2] + "." + o[1] + "." + o[0] + "."
	var out []string
	for _, q := range dns.Questions() {
		if strings.HasPrefix(q, prefix) {
			out = append(out, q)
		}
	}
	return out
}

// TestDNSBLSwitch: E-MailRelay's --dnsbl ZONE,THRESHOLD,TIMEOUT,SERVER with
// a test DNS server. A listed client outside mynetworks gets Postfix's
// reply with the list's TXT text; an unlisted one passes; a trusted one is
// never looked up; a client whose lookups are dropped passes after the
// timeout (fail open) and the log warns about it.
func TestDNSBLSwitch(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, blZone)
	// 127.0.0.4's queries go unanswered.
	dns.SetDropFunc(func(name, _ string) bool { return strings.HasPrefix(name, "4.0.0.127.") })
	r := startPolicyRelay(t, "[policy]\nmynetworks = [\"127.0.0.5/32\"]\nrelay_domains = [\"relay.example\"]\n",
		"--dnsbl", "bl.example,1,2000,"+dns.Addr())

	runDNSBLCases(t, r, []dnsblCase{
		{"127.0.0.2", "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.example; " + blText},
		{"127.0.0.3", "250"},
		{"127.0.0.5", "250"},
	})
	if q := questionsFor(dns, "127.0.0.5"); len(q) != 0 {
		t.Errorf("DNS questions about the trusted client 127.0.0.5: %q; want none", q)
	}
	if q := questionsFor(dns, "127.0.0.3"); len(q) == 0 {
		t.Errorf("no DNS question about the outside client 127.0.0.3; want it looked up in bl.example")
	}

	start := time.Now()
	runDNSBLCases(t, r, []dnsblCase{{"127.0.0.4", "250"}})
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("a client whose DNSBL lookups time out waited %v; want about the 2000 ms timeout", d)
	}
	if q := questionsFor(dns, "127.0.0.4"); len(q) == 0 {
		t.Errorf("no DNS question about 127.0.0.4; the drop case did not happen")
	}
	if w := waitDiag(r, 3*time.Second, "level=WARN", "127.0.0.4"); len(w) == 0 {
		t.Errorf("no warning in the log about the DNSBL lookup for 127.0.0.4 that timed out (client let through); stderr:\n%s", r.stderr())
	}
}

// TestDNSBLRejectRBLClient: Postfix's "reject_rbl_client bl.example" in
// client_restrictions, after permit_mynetworks, with dns_server pointing at
// the test DNS server: the same reply for a listed client, none for an
// unlisted one, and no lookup for a trusted one.
func TestDNSBLRejectRBLClient(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, blZone)
	r := startPolicyRelay(t, fmt.Sprintf(`[policy]
mynetworks = ["127.0.0.5/32"]
relay_domains = ["relay.example"]
client_restrictions = ["permit_mynetworks", "reject_rbl_client bl.example"]
dns_server = %q
`, dns.Addr()))
	runDNSBLCases(t, r, []dnsblCase{
		{"127.0.0.2", "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.example; " + blText},
		{"127.0.0.3", "250"},
		{"127.0.0.5", "250"},
	})
	if q := questionsFor(dns, "127.0.0.5"); len(q) != 0 {
		t.Errorf("DNS questions about the trusted client 127.0.0.5: %q; want none", q)
	}
	for _, e := range r.events("reject") {
		if e.Get("rule") != "reject_rbl_client bl.example" {
			t.Errorf("reject line %v; want rule=\"reject_rbl_client bl.example\"", e.Fields)
		}
	}
}

// TestDNSBLFailClosedDefers: with E-MailRelay's negative timeout (fail
// closed) a client whose lookups time out is refused, but temporarily: a
// DNS outage is no verdict on the client, and a 5xx would bounce its mail.
// A listed client still hears the permanent refusal.
func TestDNSBLFailClosedDefers(t *testing.T) {
	t.Parallel()
	dns := harness.StartDNS(t, blZone)
	dns.SetDropFunc(func(name, _ string) bool { return strings.HasPrefix(name, "4.0.0.127.") })
	r := startPolicyRelay(t, "[policy]\nmynetworks = [\"127.0.0.5/32\"]\nrelay_domains = [\"relay.example\"]\n",
		"--dnsbl", "bl.example,1,-1000,"+dns.Addr())
	runDNSBLCases(t, r, []dnsblCase{
		{"127.0.0.2", "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.example; " + blText},
		{"127.0.0.3", "250"},
		{"127.0.0.4", "450 4.7.1 Service unavailable; client [127.0.0.4] blocklist lookup failed"},
	})
}
