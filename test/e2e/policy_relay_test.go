package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// relayProbe is one open-relay probe: a recipient an unauthenticated client
// outside mynetworks gives, and the reply the relay must give.
type relayProbe struct {
	rcpt string
	want string // the exact reply, or a bare code
}

// deniedReply is Postfix's reject_unauth_destination reply.
func deniedReply(rcpt string) string { return "554 5.7.1 <" + rcpt + ">: Relay access denied" }

// TestPolicyRelayOpenRelayProbes: a client outside mynetworks, not logged
// in, tries every classic way of making a relay with relay_domains =
// ["relay.example"] send elsewhere: a foreign domain, the percent hack, a
// quoted @, a bang path, source routes, an address literal, look-alike
// domains, a second @, upper case, a trailing dot. Each probe gets a
// connection of its own and one RCPT (no retries); every one is refused with
// a 5xx and logged as a reject (stage=rcpt, or command for bad syntax) with the reply the client heard,
// while plain addresses in relay.example are accepted. Nothing is spooled.
func TestPolicyRelayOpenRelayProbes(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n")

	probes := []relayProbe{
		{"victim@elsewhere.example", deniedReply("victim@elsewhere.example")},
		{"victim%elsewhere.example@relay.example", deniedReply("victim%elsewhere.example@relay.example")},
		// go-smtp unquotes the local part; the relay quotes it again,
		// and a local part naming another destination is never a local
		// one.
		{`"victim@elsewhere.example"@relay.example`, deniedReply(`"victim@elsewhere.example"@relay.example`)},
		{"elsewhere.example!victim@relay.example", deniedReply("elsewhere.example!victim@relay.example")},
		// go-smtp strips a source route before the policy sees the
		// address (RFC 5321 appendix C: accept and ignore it), so the
		// final mailbox is what is judged, and what the reply names.
		{"@relay.example:victim@elsewhere.example", deniedReply("victim@elsewhere.example")},
		{"victim@[192.0.2.77]", deniedReply("victim@[192.0.2.77]")},
		{"victim@[127.0.0.1]", deniedReply("victim@[127.0.0.1]")},
		{"victim@[IPv6:2001:db8::77]", deniedReply("victim@[IPv6:2001:db8::77]")},
		{"victim@relay.example.elsewhere.example", deniedReply("victim@relay.example.elsewhere.example")},
		{"victim@elsewhererelay.example", deniedReply("victim@elsewhererelay.example")},
		// Read as a quoted local part "victim@relay.example" at
		// elsewhere.example: a foreign domain.
		// An unquoted @ in the local part is no address (RFC 5321
		// section 4.1.2): refused as syntax, before any policy.
		{"victim@relay.example@elsewhere.example", "501 5.1.3 Bad recipient address syntax"},
		{"VICTIM@ELSEWHERE.EXAMPLE", deniedReply("VICTIM@ELSEWHERE.EXAMPLE")},
		{"VICTIM%ELSEWHERE.EXAMPLE@RELAY.EXAMPLE", deniedReply("VICTIM%ELSEWHERE.EXAMPLE@RELAY.EXAMPLE")},
		{`"VICTIM@ELSEWHERE.EXAMPLE"@RELAY.EXAMPLE`, deniedReply(`"VICTIM@ELSEWHERE.EXAMPLE"@relay.example`)},
		{"ELSEWHERE.EXAMPLE!VICTIM@RELAY.EXAMPLE", deniedReply("ELSEWHERE.EXAMPLE!VICTIM@RELAY.EXAMPLE")},
		{"@RELAY.EXAMPLE:VICTIM@ELSEWHERE.EXAMPLE", deniedReply("VICTIM@ELSEWHERE.EXAMPLE")},
		{"VICTIM@RELAY.EXAMPLE.ELSEWHERE.EXAMPLE", deniedReply("VICTIM@RELAY.EXAMPLE.ELSEWHERE.EXAMPLE")},
		{"victim@elsewhere.example.", deniedReply("victim@elsewhere.example.")},
		{"victim%elsewhere.example@relay.example.", deniedReply("victim%elsewhere.example@relay.example.")},
		// Control: the relay's own domain, any case, is accepted.
		{"user@relay.example", "250"},
		{"USER@RELAY.EXAMPLE", "250"},
		{"user@sub.relay.example", "250"},
	}

	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RCPT TO\treply")
	for _, p := range probes {
		got, client := probeRcpt(t, r.addr(), p.rcpt)
		fmt.Fprintf(tw, "<%s>\t%s\n", p.rcpt, got)
		if !replyIs(got, p.want) {
			t.Errorf("RCPT TO:<%s> from outside mynetworks = %q; want %q", p.rcpt, got, p.want)
		}
		if p.want == "250" {
			continue
		}
		if got.code()/100 != 5 {
			t.Errorf("RCPT TO:<%s> = %q: an open-relay probe must be refused with 5xx", p.rcpt, got)
		}
		// The probe's own connection has exactly one reject line, at
		// RCPT, with the reply the client heard.
		var es []*maillog.Entry
		waitFor(5*time.Second, func() bool { es = clientRejects(r, client); return len(es) > 0 })
		stage := "rcpt"
		if got.code() == 501 {
			stage = "command" // refused as syntax, before the restrictions
		}
		if len(es) != 1 || es[0].Get("stage") != stage || es[0].Get("reply") != got.String() {
			t.Errorf("mail-log reject lines for %s (RCPT TO:<%s>): %v; want one stage=%s reply=%q", client, p.rcpt, fields(es), stage, got.String())
		}
	}
	tw.Flush()
	t.Logf("open-relay probes from 127.0.0.1 (outside mynetworks, not logged in):\n%s", table.String())
	checkSpoolEmpty(t, r.spool)

	// A source route that ends in relay.example is accepted, and the
	// route is dropped: the message is spooled for the final mailbox
	// only, never for the intermediate host.
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO prober.e2e.test")
	tx, err := c.send("prober@example.org", []string{"@elsewhere.example,@relay.example:victim@relay.example"}, message("routed"))
	if err != nil {
		t.Fatalf("routed recipient: %v; transaction %+v", err, tx)
	}
	id := queuedID(t, tx.Final)
	env := readEnvelope(t, filepath.Join(r.spool, id+".envelope"))
	if got := env.all("X-MailRelay-To-Remote"); !slices.Equal(got, []string{"victim@relay.example"}) {
		t.Errorf("spooled recipients for <@elsewhere.example,@relay.example:victim@relay.example> = %q; want [victim@relay.example]", got)
	}
}

// TestPolicyRelayQuotedLocalPart: a quoted local part in a relay domain
// ("john doe"@relay.example, RFC 5321 Quoted-string) is a valid address
// that Postfix accepts; it must be accepted and spooled quoted.
func TestPolicyRelayQuotedLocalPart(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+`relay_domains = ["relay.example"]`+"\n")
	got, _ := probeRcpt(t, r.addr(), `"john doe"@relay.example`)
	if got.code() != 250 {
		t.Errorf(`RCPT TO:<"john doe"@relay.example> = %q; want 250 (a quoted local part is valid, RFC 5321 4.1.2)`, got)
	}
}

// probeRcpt opens a connection, says EHLO and MAIL, gives one RCPT TO and
// returns its reply and the connection's client address (ip:port, as the
// mail log names it), then QUIT.
func probeRcpt(t *testing.T, addr, rcpt string) (reply, string) {
	t.Helper()
	return probeRcptFrom(t, addr, "127.0.0.1", rcpt)
}

// probeRcptFrom is probeRcpt from the address ip.
func probeRcptFrom(t *testing.T, addr, ip, rcpt string) (reply, string) {
	t.Helper()
	c := mustDial(t, addr, ip)
	defer c.Close()
	client := c.conn.LocalAddr().String()
	mustCmd(t, c, "250", "EHLO prober.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<prober@example.org>")
	rep, err := c.cmd("RCPT TO:<%s>", rcpt)
	if err != nil {
		t.Fatalf("RCPT TO:<%s>: %v", rcpt, err)
	}
	c.cmd("QUIT")
	return rep, client
}

// clientRejects returns the reject lines of one client connection.
//
// Only the client's last connection counts: an address and port name one
// connection between its connect and disconnect lines, and a busy machine
// gives a later probe a port an earlier one had (a CI run saw a probe's
// port carry the reject of the probe two before it).
func clientRejects(r *relay, client string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("") {
		switch {
		case e.Get("client") != client:
		case e.Event == "connect":
			out = nil
		case e.Event == "reject":
			out = append(out, e)
		}
	}
	return out
}

// fields lists the fields of mail-log entries, for messages.
func fields(es []*maillog.Entry) []any {
	var out []any
	for _, e := range es {
		out = append(out, e.Fields)
	}
	return out
}
