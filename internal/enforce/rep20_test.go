package enforce

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRep20ReportNotMaskedByForeignUpstream: a client that may relay mails
// its own domain, whose server answers with a refusal no rule knows, once
// an hour. That report must not use up the hour's report to the
// administrator: Gmail's own unknown refusal a minute later (a new
// wording to write a rule for) still reaches the administrator. Nor may
// twenty such servers send twenty reports (TestAdminReportsLimitedByRule).
func TestRep20ReportNotMaskedByForeignUpstream(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Now: newFakeClock().Now,
		RelayAddress: "postmaster@relay.example", Admin: "admin@relay.example", MailLog: maillog.New(nil)}
	for i := range 20 {
		u := upstream("550 5.7.0 go away, no rule knows me")
		u.Host = fmt.Sprintf("mx%d.attacker.example[198.51.100.%d]:25", i, i)
		e.Act(context.Background(), Refusal{ID: fmt.Sprintf("Q%d", i), Client: netip.MustParseAddr("203.0.113.9"),
			From: "eve@attacker.example", To: []string{"x@attacker.example"}, Upstream: u})
	}
	u := upstream("550-5.7.0 A refusal Gmail has never given before. 550 5.7.0 x1 - gsmtp")
	u.Host = "gmail-smtp-in.l.google.com[142.250.1.26]:25"
	e.Act(context.Background(), Refusal{ID: "G1", Client: netip.MustParseAddr("203.0.113.10"),
		From: "bob@clean.example", To: []string{"y@gmail.com"}, Upstream: u})
	if ents, _ := sp.List(); len(ents) != 2 {
		t.Errorf("%d reports queued for 20 unknown refusals of untrusted hosts and one of Gmail's; want 2 (one each)", len(ents))
	}
}

// TestRep20AdminAlertNamesUpstream: a client that may relay mails its own
// domain, whose server answers in Gmail's words that the relay has no PTR
// record. The administrator's alert said the relay's own set-up was at
// fault, the rule and the reply, but not which server said so: a forged
// alert read like Gmail's own. It names the upstream, and says when that
// upstream is not a trusted one; Gmail's own alert names Gmail's host.
func TestRep20AdminAlertNamesUpstream(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Now: newFakeClock().Now,
		RelayAddress: "postmaster@relay.example", Admin: "admin@relay.example", MailLog: maillog.New(nil)}
	const ptr = "550-5.7.25 [192.0.2.25] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. x1 - gsmtp"
	for _, host := range []string{"mx.attacker.example[198.51.100.7]:25", "gmail-smtp-in.l.google.com[142.250.1.26]:25"} {
		e.Act(context.Background(), Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "eve@attacker.example",
			To: []string{"x@attacker.example"}, Upstream: Upstream{Reply: textReply(ptr), Host: host, Stage: "data"}})
	}
	ents, _ := sp.List()
	var mails []string
	for _, ent := range ents {
		b, err := os.ReadFile(sp.ContentPath(ent.ID))
		if err != nil {
			t.Fatal(err)
		}
		mails = append(mails, string(b))
	}
	if len(mails) != 2 {
		t.Fatalf("%d alerts queued; want 2 (one for the foreign upstream, one for Gmail)", len(mails))
	}
	foreign, gmail := 0, 0
	for _, m := range mails {
		switch {
		case strings.Contains(m, "mx.attacker.example[198.51.100.7]") && strings.Contains(m, "not a trusted upstream"):
			foreign++
		case strings.Contains(m, "gmail-smtp-in.l.google.com[142.250.1.26]") && !strings.Contains(m, "not a trusted upstream"):
			gmail++
		}
	}
	if foreign != 1 || gmail != 1 {
		t.Errorf("alerts:\n%s\nwant one naming mx.attacker.example as not trusted, one naming Gmail's host", strings.Join(mails, "\n----\n"))
	}
}

type rep20Welcome bool

func (w rep20Welcome) Welcome(netip.Addr, string) bool { return bool(w) }

// TestRep20EveryReplyEveryStage: every reply of gmail-replies.md, from
// Gmail, at every stage of a session, for a welcomelisted client, another
// and a local submission: a welcomelisted or local client is never banned
// or blocked; nobody is banned before the content went, nor sanctioned
// before the transaction; a pace or an alert keeps the mail (a 4xx heard).
func TestRep20EveryReplyEveryStage(t *testing.T) {
	data, err := os.ReadFile("testdata/gmail-replies.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, " ", 5)
		text := f[2] + " " + f[3] + " " + f[4] + " x1si1 - gsmtp"
		for _, stage := range []string{"greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data command", "data"} {
			for _, who := range []string{"welcomed", "other", "local"} {
				n++
				p := Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter(), Welcome: rep20Welcome(who == "welcomed")}
				rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "a@example.com", To: []string{"b@gmail.com"},
					Local: who == "local", Upstream: Upstream{Reply: textReply(text), Host: "gmail-smtp-in.l.google.com[142.250.1.26]:25", Stage: stage}}
				pl := Decide(p, rf)
				bad := ""
				switch {
				case who != "other" && (pl.Action == Ban || pl.Action == BlockDomain):
					bad = "a " + who + " client sanctioned"
				case BeforeContent(stage) && pl.Action == Ban:
					bad = "banned before the content went"
				case BeforeTransaction(stage) && (pl.Action == Ban || pl.Action == BlockDomain || pl.Action == Encapsulate):
					bad = "sanctioned before the transaction"
				case pl.Verdict.Action.KeepsMail() && pl.Heard.Code >= 500:
					bad = "a pace or alert heard as permanent"
				case pl.Action == Encapsulate && stage == "data" && pl.Heard.Code/100 != 2:
					bad = "an encapsulated message not heard as delivered"
				}
				if bad != "" {
					t.Errorf("%s at %s, %s client: %s (action %v, why %q, heard %q)", f[1], stage, who, bad, pl.Action, pl.Why, pl.Heard.String())
				}
			}
		}
	}
	if n < 1000 {
		t.Errorf("only %d cases", n)
	}
}

// TestRep20ExplainSaysWhatIsDone: "relaykeeper enforce test" printed the
// rules' verdict, "ban", for a reply given at RCPT TO (which bans nobody:
// the content was not read) and for one from a host that is not trusted
// (reported, not acted on), with nothing saying the relay would not ban:
// an administrator trying a log line was told the wrong thing. The verdict
// stays the first word; a line says what the relay does instead, and why.
func TestRep20ExplainSaysWhatIsDone(t *testing.T) {
	const spam = "550 5.7.1 Our system has detected that this message is likely unsolicited mail. x - gsmtp"
	for _, tt := range []struct{ reply, host, want string }{
		{spam + " (in reply to RCPT TO command)", "", "relay does: none (refused at RCPT, before the content"},
		{spam, "mx.attacker.example", "relay does: report (upstream mx.attacker.example is not a trusted upstream"},
	} {
		var out strings.Builder
		if err := Explain(&out, Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, tt.reply, tt.host); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), "ban (rule gmail-unsolicited)\n") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("Explain(%q, host %q):\n%s\nwant the verdict first, then %q", tt.reply, tt.host, out.String(), tt.want)
		}
	}
}
