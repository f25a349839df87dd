package e2e

import (
	"strconv"
	"strings"
	"testing"
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
