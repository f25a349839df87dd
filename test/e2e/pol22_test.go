package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPol22PermitBeforeRelayCheck: relay_restrictions = ["permit",
// "reject_unauth_destination"] (or a recipient list that starts with
// "permit") lets anyone relay anywhere: the permit ends the list before
// the relay check runs. The relay started so; Postfix's smtpd refuses
// (has_required stops at "permit": "restriction `reject_unauth_destination'
// after `permit' is ignored", then fatal "specify at least one working
// instance of ..."). It is refused at its line.
func TestPol22PermitBeforeRelayCheck(t *testing.T) {
	t.Parallel()
	for _, lists := range []string{
		`relay_restrictions = ["permit", "reject_unauth_destination"]`,
		`relay_restrictions = ["permit_mynetworks", "PERMIT", "defer_unauth_destination"]`,
		`relay_restrictions = []` + "\n" + `recipient_restrictions = ["permit", "reject"]`,
		// A class runs in place: its permit ends the list too.
		`relay_restrictions = ["open_up", "reject_unauth_destination"]` + "\n[policy.restriction_classes]\nopen_up = [\"permit\"]",
	} {
		cfg19Refused(t, "[policy]\n"+lists+"\n", 2, "policy.relay_restrictions", "anyone could relay anywhere")
	}
	// A permit in the relay list ends that list only: the recipient
	// list's relay check still runs, and Postfix takes it too.
	if _, code, out := cfg19Start(t, "[policy]\nrelay_restrictions = [\"permit\"]\nrecipient_restrictions = [\"permit_mynetworks\", \"reject_unauth_destination\"]\n"); code != -1 {
		t.Errorf("relay check in recipient_restrictions after a permitting relay list: exit %d, stderr %q; want it to start", code, out)
	}
	// As in Postfix, the relay check may stand in a restriction class
	// that the list names; the relay started with it refused, and
	// refuses outside destinations.
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n"+
		`relay_restrictions = ["permit_mynetworks", "Relay_Check"]`+"\n[policy.restriction_classes]\nrelay_check = [\"reject_unauth_destination\"]\n")
	for _, p := range []relayProbe{
		{"victim@elsewhere.example", deniedReply("victim@elsewhere.example")},
		{"victim%elsewhere.example@relay.example", deniedReply("victim%elsewhere.example@relay.example")},
		{"user@relay.example", "250"},
	} {
		if got, _ := probeRcpt(t, r.addr(), p.rcpt); !replyIs(got, p.want) {
			t.Errorf("relay check in a class: RCPT TO:<%s> = %q; want %q", p.rcpt, got, p.want)
		}
	}
}

// TestPol22RelayDomainsTableHoldsEveryDomain: a relay_domains table that
// holds every domain (static:OK, a pcre: table with /./ OK, a regexp:
// one with /^/ OK) makes every recipient a relay destination for any
// client: an open relay, which started without a word. As for a
// mynetworks table that holds every address, it is refused at its line.
func TestPol22RelayDomainsTableHoldsEveryDomain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pcre := writeFile(t, dir, "relay_domains.pcre", "/./ OK\n", 0o644)
	re := writeFile(t, dir, "relay_domains.regexp", "/^/ OK\n", 0o644)
	list := writeFile(t, dir, "relay_domains", "relay.example\npcre:"+pcre+"\n", 0o644)
	for _, spec := range []string{`"static:OK"`, strconv.Quote("pcre:" + pcre), `"relay.example, regexp:` + re + `"`} {
		cfg19Refused(t, "[policy]\n# ours\nrelay_domains = ["+spec+"]\n", 3, "policy.relay_domains", "open relay")
	}
	if _, code, out := cfg19Start(t, "[policy]\nrelay_domains = ["+strconv.Quote(list)+"]\n"); code <= 0 ||
		!strings.Contains(out, list+":2: ") || !strings.Contains(out, "open relay") {
		t.Errorf("a table of every domain in a relay_domains file: exit %d, stderr %q; want a refusal naming %s:2", code, out, list)
	}
	// Excluding with one is fine.
	if _, code, out := cfg19Start(t, "[policy]\nrelay_domains = [\"!static:OK\"]\n"); code != -1 {
		t.Errorf("relay_domains = [\"!static:OK\"]: exit %d, stderr %q; want it to start", code, out)
	}
}

// TestPol22ServerNoneEveryone: with --server-auth, the secrets file's
// "server none" lines are the trusted networks; a line for every address
// ("*.*.*.*", "0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96") with
// --remote-clients and no address verifier to decide lets anyone on the
// Internet relay anywhere, and the relay started so. As mynetworks =
// ["0.0.0.0/0"] is, it is refused, naming the file and line. The E-MailRelay
// guide's "NONE server *.*.*.* x" with a verifier (seed 001) still starts,
// and so does a relay that serves local clients only. A file changed to
// trust everyone later, and reloaded, trusts no one without a login.
func TestPol22ServerNoneEveryone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	verifier := writeFile(t, dir, "verify.sh", seedVerifierScript, 0o755)
	for _, line := range []string{"server none *.*.*.* anyone", "NONE server 0.0.0.0/0 anyone", "server none ::/0 six", "server none ::ffff:0.0.0.0/96 mapped"} {
		sec := writeFile(t, dir, "auth.secrets", "server plain alice alicepw\n"+line+"\n", 0o600)
		if _, code, out := cfg19Start(t, "", "--server-auth", sec, "--remote-clients"); code <= 0 ||
			!strings.Contains(out, sec+":2: ") || !strings.Contains(out, "open relay") {
			t.Errorf("%q with --remote-clients: exit %d, stderr %q; want a refusal naming %s:2", line, code, out, sec)
		}
		for _, extra := range [][]string{{"--remote-clients", "--verifier", verifier}, nil} {
			if _, code, out := cfg19Start(t, "", append([]string{"--server-auth", sec}, extra...)...); code != -1 {
				t.Errorf("%q with %v: exit %d, stderr %q; want it to start", line, extra, code, out)
			}
		}
	}

	sec := writeFile(t, t.TempDir(), "auth.secrets", "server plain alice alicepw\nserver none 192.0.2.1 one\n", 0o600)
	r := startAuthRelay(t, "", "", "--server-auth", sec, "--remote-clients")
	if err := os.WriteFile(sec, []byte("server plain alice alicepw\nserver none *.*.*.* anyone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "server secrets reloaded", sec)) == 0 {
		t.Fatalf("no \"server secrets reloaded\" line naming %s after SIGHUP; stderr:\n%s", sec, r.stderr())
	}
	if got, _ := probeRcpt(t, r.addr(), "victim@elsewhere.example"); got.code() != 554 {
		t.Errorf("after the secrets file was edited to trust *.*.*.*, RCPT TO:<victim@elsewhere.example> = %q; want 554: an open relay", got)
	}
}

// TestPol22AccessTablePermitsEveryone: an access table that says OK to
// every client, sender or recipient ("0.0.0.0/0 OK" in a cidr: table,
// static:OK, /./ OK) ahead of reject_unauth_destination lets anyone relay
// anywhere, and the relay started so (Postfix does too). It is refused at
// its line. In client_restrictions, or with the relay check in the
// recipient list that runs after, it opens nothing and is taken.
func TestPol22AccessTablePermitsEveryone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cidr := writeFile(t, dir, "client_access.cidr", "192.0.2.0/24 REJECT\n0.0.0.0/0 OK\n", 0o644)
	pcre := writeFile(t, dir, "recipient_access.pcre", "/^postmaster@/ REJECT\n/./ OK\n", 0o644)
	for _, tc := range []struct {
		lists string
		line  int
	}{
		{`relay_restrictions = ["check_client_access cidr:` + cidr + `", "reject_unauth_destination"]`, 2},
		{`relay_restrictions = ["permit_mynetworks", "check_sender_access", "static:OK", "reject_unauth_destination"]`, 2},
		{`relay_restrictions = []` + "\n" + `recipient_restrictions = ["permit_mynetworks", "check_recipient_access pcre:` + pcre + `", "reject_unauth_destination"]`, 3},
	} {
		cfg19Refused(t, "[policy]\n"+tc.lists+"\n", tc.line, "open relay")
	}
	for _, lists := range []string{
		`client_restrictions = ["check_client_access cidr:` + cidr + `"]`,
		`relay_restrictions = ["check_client_access cidr:` + cidr + `"]` + "\n" + `recipient_restrictions = ["reject_unauth_destination"]`,
		`relay_restrictions = ["warn_if_reject", "check_client_access cidr:` + cidr + `", "permit_mynetworks", "reject_unauth_destination"]`,
	} {
		if _, code, out := cfg19Start(t, "[policy]\n"+lists+"\n"); code != -1 {
			t.Errorf("%s: exit %d, stderr %q; want it to start", lists, code, out)
		}
	}
}

// TestPol22AllClientCertsFromPublicCAs: permit_tls_all_clientcerts
// permits every client whose certificate verifies against tls.client_ca;
// with "<default>", the system's public CAs, anyone who gets a
// certificate from a public CA (with the clientAuth usage, as many
// issue) relays anywhere, and the relay started so. It is refused at the
// setting's line: give the CA you run.
func TestPol22AllClientCertsFromPublicCAs(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	tlsCfg := "[tls]\ncertificate = " + strconv.Quote(pem) + "\nclient_ca = \"<default>\"\n"
	for _, lists := range []string{
		`relay_restrictions = ["permit_mynetworks", "permit_tls_all_clientcerts", "reject_unauth_destination"]`,
		`recipient_restrictions = ["Permit_TLS_All_ClientCerts", "reject_unauth_destination"]`,
		`relay_restrictions = ["certs", "reject_unauth_destination"]` + "\n[policy.restriction_classes]\ncerts = [\"permit_tls_all_clientcerts\"]",
	} {
		cfg19Refused(t, tlsCfg+"[policy]\n"+lists+"\n", 3, "tls.client_ca", "open relay")
	}
	// E-MailRelay's --server-tls-verify <default>, which only requires
	// such a certificate, is fine; the switch is named when it comes too.
	if _, code, out := cfg19Start(t, tlsCfg); code != -1 {
		t.Errorf("client_ca = <default> without permit_tls_all_clientcerts: exit %d, stderr %q; want it to start", code, out)
	}
	_, code, out := cfg19Start(t, "[tls]\ncertificate = "+strconv.Quote(pem)+"\n[policy]\n"+
		`relay_restrictions = ["permit_tls_all_clientcerts", "reject_unauth_destination"]`+"\n", "--server-tls-verify", "<default>")
	if code <= 0 || !strings.Contains(out, "--server-tls-verify") || !strings.Contains(out, "open relay") {
		t.Errorf("--server-tls-verify <default> with permit_tls_all_clientcerts: exit %d, stderr %q; want a refusal naming the switch", code, out)
	}
}

// TestPol22ClientCertTablePermitsEveryone: relay_clientcerts =
// ["static:OK"] (or a regexp: table with /./ OK), or check_ccert_access
// with such a table, ahead of the relay check permits every client that
// shows a certificate, and anyone can make one: an open relay, which
// started. It is refused at its line, as an access table that permits
// every client is.
func TestPol22ClientCertTablePermitsEveryone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, pem := certFiles(t, dir)
	re := writeFile(t, dir, "certs.regexp", "/./ OK\n", 0o644)
	tlsCfg := "[tls]\ncertificate = " + strconv.Quote(pem) + "\nask_client_cert = true\n"
	for _, lists := range []string{
		"relay_restrictions = [\"permit_tls_clientcerts\", \"reject_unauth_destination\"]\nrelay_clientcerts = [\"static:OK\"]",
		"relay_restrictions = [\"permit_tls_clientcerts\", \"reject_unauth_destination\"]\nrelay_clientcerts = [\"regexp:" + re + "\"]",
		"relay_restrictions = [\"check_ccert_access static:OK\", \"reject_unauth_destination\"]\nrelay_clientcerts = []",
	} {
		cfg19Refused(t, tlsCfg+"[policy]\n"+lists+"\n", 5, "open relay")
	}
}
