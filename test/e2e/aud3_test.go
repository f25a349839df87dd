package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// aud3Zone: a blocklist bl.test and an allowlist wl.test whose answers
// are of every kind a list gives: a listing (127.0.0.2 in bl.test), an
// error code ("query refused", 127.255.255.254), an answer outside
// 127.0.0.0/8, SERVFAIL (127.0.0.5), and no answer at all (127.0.0.6).
const aud3Zone = `
2.0.0.127.bl.test.  A   127.0.0.2
2.0.0.127.bl.test.  TXT "bl.test lists 127.0.0.2"
3.0.0.127.bl.test.  A   127.255.255.254
4.0.0.127.bl.test.  A   10.0.0.2
7.0.0.127.bl.test.  A   127.255.255.252
2.0.0.127.wl.test.  A   127.0.10.2
3.0.0.127.wl.test.  A   127.255.255.254
4.0.0.127.wl.test.  A   10.0.0.2
`

func aud3DNS(t *testing.T) *harness.DNSServer {
	d := harness.StartDNS(t, aud3Zone)
	d.SetRcode("5.0.0.127.bl.test.", dns.RcodeServerFailure)
	d.SetRcode("5.0.0.127.wl.test.", dns.RcodeServerFailure)
	d.SetDrop("6.0.0.127.bl.test.", "6.0.0.127.wl.test.")
	return d
}

// TestAud3DNSBLAnswers: --dnsbl (failing open and, with a negative
// timeout, closed) and reject_rbl_client against every kind of answer: only
// a listing refuses; "query refused" (127.255.255.x), an answer outside
// 127.0.0.0/8, SERVFAIL and no answer let the client through, except that
// no answer at all defers when the timeout is negative.
func TestAud3DNSBLAnswers(t *testing.T) {
	t.Parallel()
	d := aud3DNS(t)
	base := "[policy]\n" + outsideNetworks + `relay_domains = ["relay.example"]` + "\n"
	listed := "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.test; bl.test lists 127.0.0.2"
	for _, tc := range []struct {
		name, cfg string
		extra     []string
		silent    string // the reply when the list does not answer
	}{
		{"--dnsbl", base, []string{"--dnsbl", "bl.test,1,1000," + d.Addr()}, "250"},
		{"--dnsbl fail closed", base, []string{"--dnsbl", "bl.test,1,-1000," + d.Addr()},
			"450 4.7.1 Service unavailable; client [127.0.0.6] blocklist lookup failed"},
		{"reject_rbl_client", base + fmt.Sprintf("dns_server = %q\n", d.Addr()) +
			`client_restrictions = ["reject_rbl_client bl.test"]` + "\n", nil, "250"},
	} {
		r := startPolicyRelay(t, tc.cfg, tc.extra...)
		for _, c := range []struct{ ip, want string }{
			{"127.0.0.2", listed},
			{"127.0.0.3", "250"}, // 127.255.255.254
			{"127.0.0.4", "250"}, // 10.0.0.2
			{"127.0.0.5", "250"}, // SERVFAIL
			{"127.0.0.6", tc.silent},
			{"127.0.0.7", "250"}, // 127.255.255.252
			{"127.0.0.8", "250"}, // NXDOMAIN
		} {
			if a := tryMessage(t, r.addr(), c.ip, "s@example.org", "user@relay.example"); !replyIs(a.rcpt, c.want) {
				t.Errorf("%s, client %s: RCPT = %q; want %q", tc.name, c.ip, a.rcpt, c.want)
			}
		}
	}
}

// TestAud3DNSWLAnswers: permit_dnswl_client ahead of a reject permits only
// for a listing; an answer outside 127.0.0.0/8 or NXDOMAIN is no listing;
// "query refused", SERVFAIL and no answer make the reject a 450, as
// Postfix's DEFER_IF_REJECT.
func TestAud3DNSWLAnswers(t *testing.T) {
	t.Parallel()
	d := aud3DNS(t)
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n"+fmt.Sprintf("dns_server = %q\n", d.Addr())+
		`recipient_restrictions = ["permit_dnswl_client wl.test", "reject_unauth_destination", "reject"]`+"\n")
	rejected := "554 5.7.1 <user@relay.example>: Recipient address rejected: Access denied"
	for _, c := range []struct{ ip, want string }{
		{"127.0.0.2", "250"},
		{"127.0.0.3", "450 4.7.1 <127.0.0.3>: Client host rejected: Service unavailable"},
		{"127.0.0.4", rejected},
		{"127.0.0.5", "450 4.7.1 <127.0.0.5>: Client host rejected: Service unavailable"},
		{"127.0.0.6", "450 4.7.1 <127.0.0.6>: Client host rejected: Service unavailable"},
		{"127.0.0.8", rejected},
	} {
		if a := tryMessage(t, r.addr(), c.ip, "s@example.org", "user@relay.example"); !replyIs(a.rcpt, c.want) {
			t.Errorf("client %s: RCPT = %q; want %q", c.ip, a.rcpt, c.want)
		}
	}
}

// TestAud3DNSBLSparesLogins: a user who has logged in may relay whatever
// a blocklist says about the address it connects from (a roaming user on
// a dial-up or home address that Spamhaus's PBL lists), as with Postfix's
// "permit_sasl_authenticated, ..., reject_rbl_client" of the sender
// blacklist guide and its submission service; a client that has not
// logged in is still refused.
func TestAud3DNSBLSparesLogins(t *testing.T) {
	t.Parallel()
	d := aud3DNS(t)
	r := startAuthRelay(t, plainSecrets, "", "--dnsbl", "bl.test,1,1000,"+d.Addr())
	c := loginTLS(t, r.addr(), "127.0.0.2", "bob", "bobpw", "235")
	mustCmd(t, c, "250", "MAIL FROM:<bob@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<%s>", outsideRcpt)
	mustCmd(t, c, "250", "RCPT TO:<user@relay.example>")
	a := tryMessage(t, r.addr(), "127.0.0.2", "s@example.org", "user@relay.example")
	if want := "554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.test; bl.test lists 127.0.0.2"; a.rcpt.String() != want {
		t.Errorf("listed client, not logged in: RCPT = %q; want %q", a.rcpt, want)
	}
}

// TestAud3AuthWithoutTLSWarns: --server-auth with accounts but no TLS on
// any listener (E-MailRelay's usual LAN set-up, where E-MailRelay offers
// AUTH in plain text) can never offer AUTH, since relaykeeper offers it
// only over TLS: nobody can log in, and with --server-auth only the
// "server none" addresses may relay. The relay says so at start, naming
// the ways out; not when the file has only "server none" lines, nor with
// TLS, nor with allow_insecure.
func TestAud3AuthWithoutTLSWarns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	accounts := writeFile(t, dir, "accounts", plainSecrets, 0o600)
	none := writeFile(t, dir, "none", "server none 127.0.0.1 lo\n", 0o600)
	const warning = "AUTH is never offered"
	for _, c := range []struct {
		name  string
		cfg   string
		extra []string
		warn  bool
	}{
		{"accounts, no TLS", "", []string{"--server-auth", accounts}, true},
		{"none lines only", "", []string{"--server-auth", none}, false},
		{"STARTTLS", "", []string{"--server-auth", accounts, "--server-tls", "--server-tls-certificate", pem}, false},
		{"allow_insecure", "[auth]\nallow_insecure = true\n", []string{"--server-auth", accounts}, false},
	} {
		r := startPolicyRelay(t, c.cfg, c.extra...)
		c2 := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c2, "250", "EHLO client.e2e.test")
		c2.Close()
		if got := strings.Contains(r.stderr(), warning); got != c.warn {
			t.Errorf("%s: a warning %q in the log: %v; want %v; log:\n%s", c.name, warning, got, c.warn, r.stderr())
		}
	}
}

// TestAud3MoreRelayProbes: open-relay probes beyond the classic ones of
// TestPolicyRelayOpenRelayProbes, from a client outside mynetworks, not
// logged in (held): the percent hack inside quotes and toward a
// subdomain of the relay domain, stacked percents, an escaped @ in a
// quoted local part, several recipients in one RCPT, and NUL, bare CR
// and CRLF smuggled into the address. Nothing is accepted; nothing is
// spooled.
func TestAud3MoreRelayProbes(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n")
	for _, p := range []relayProbe{
		{`"victim%elsewhere.example"@relay.example`, deniedReply("victim%elsewhere.example@relay.example")},
		{"victim%elsewhere.example@sub.relay.example", deniedReply("victim%elsewhere.example@sub.relay.example")},
		{"victim%elsewhere.example%relay.example@relay.example", deniedReply("victim%elsewhere.example%relay.example@relay.example")},
		{`"victim\@elsewhere.example"@relay.example`, deniedReply(`"victim@elsewhere.example"@relay.example`)},
		{"victim@[relay.example]", "501"},
		{"victim@elsewhere.example%relay.example", "501"},
		{"user@relay.example>,<victim@elsewhere.example", "555"},
		{"victim@elsewhere.example\x00@relay.example", "500"},
		{"victim@elsewhere.example\r@relay.example", "500"},
		{"victim@elsewhere.example\t@relay.example", "501"},
	} {
		if got, _ := probeRcpt(t, r.addr(), p.rcpt); !replyIs(got, p.want) {
			t.Errorf("RCPT TO:<%q> from outside mynetworks = %q; want %q", p.rcpt, got, p.want)
		}
	}
	checkSpoolEmpty(t, r.spool)
}

// TestAud3ListFilesReload: mynetworks and relay_domains in Postfix's
// /file/name form are read again on SIGHUP, as "postfix reload" reads them
// (the Postfix relay guide's "add remote server into mynetworks file"): a
// host added to the mynetworks file may relay, a domain added to the
// relay_domains file is accepted, and a host taken out of mynetworks loses
// its trust. A file with a bad line is refused with FILE:LINE and the lists
// in force stay.
func TestAud3ListFilesReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nets := writeFile(t, dir, "mynetworks", "192.0.2.0/24\n", 0o644)
	domains := writeFile(t, dir, "relay_domains", "relay.example\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\nmynetworks = [%q]\nrelay_domains = [%q]\n", nets, domains))
	rcpt := func(ip, to string) reply {
		got, _ := probeRcptFrom(t, r.addr(), ip, to)
		return got
	}
	if got := rcpt("127.0.0.3", "u@new.example"); !replyIs(got, deniedReply("u@new.example")) {
		t.Fatalf("before the edit: %q", got)
	}
	writeFile(t, dir, "mynetworks", "192.0.2.0/24\n127.0.0.3\n", 0o644)
	writeFile(t, dir, "relay_domains", "relay.example\nnew.example\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	var got reply
	if !waitFor(2*time.Second, func() bool { got = rcpt("127.0.0.4", "u@new.example"); return got.code() == 250 }) {
		t.Errorf("a domain added to the relay_domains file, after SIGHUP: %q; want 250", got)
	}
	if got = rcpt("127.0.0.3", "u@elsewhere.example"); got.code() != 250 {
		t.Errorf("a host added to the mynetworks file, after SIGHUP: %q; want 250", got)
	}
	writeFile(t, dir, "mynetworks", "192.0.2.0/24\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(2*time.Second, func() bool { got = rcpt("127.0.0.3", "u@elsewhere.example"); return got.code() != 250 }) {
		t.Errorf("a host taken out of the mynetworks file, after SIGHUP: %q; want refused", got)
	}
	writeFile(t, dir, "mynetworks", "192.0.2.0/24\nnot-a-network\n", 0o644)
	writeFile(t, dir, "relay_domains", "relay.example\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 5*time.Second, nets+":2:")) == 0 {
		t.Errorf("no diagnostic line naming %s:2 after a bad edit; stderr:\n%s", nets, r.stderr())
	}
	if got = rcpt("127.0.0.4", "u@new.example"); got.code() != 250 {
		t.Errorf("after a bad mynetworks file, the lists in force must stay: u@new.example %q; want 250", got)
	}
}
