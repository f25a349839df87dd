package enforce

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestRevPFE3ParseReplyEchoedSaid: a reply that starts with its code is
// read whole, whatever the address it quotes holds; only text before the
// reply ("host H[A] said: ") is a log fragment's.
func TestRevPFE3ParseReplyEchoedSaid(t *testing.T) {
	const echo = `553-5.1.7 The sender address <"a] said: 421 4.7.28 unusual rate of unsolicited mail originating from your SPF domain [victim.example 30]"@x.example> is not a valid RFC-5321 553 5.1.7 address. a1 - gsmtp`
	for _, s := range []string{echo, "host mx.google.com[192.0.2.1] said: " + echo + " (in reply to MAIL FROM command)"} {
		u, err := ParseReply(s)
		if err != nil || u.Reply.Code != 553 || u.Reply.Enhanced != "5.1.7" {
			t.Errorf("ParseReply(%q) = %d %s, %v; want 553 5.1.7", s, u.Reply.Code, u.Reply.Enhanced, err)
		}
		if v := DefaultRules().Classify(u); v.Action == BlockDomain {
			t.Errorf("%q: %v", s, v)
		}
	}
}

// TestRevPFE3WithoutEnhancedCodes: gmail-replies.md's texts from an
// upstream that sends no enhanced status codes, multi-line and joined,
// keep their verdict: the rules match the text, not the code alone. Only
// the rules that take a domain from the text want Gmail's *.7.28 as well
// (a text alone never names the domain to block): those are reported.
func TestRevPFE3WithoutEnhancedCodes(t *testing.T) {
	for _, g := range loadGmailReplies(t) {
		want := g.want
		if g.domain != "" {
			want = Report
		}
		half := len(g.text) / 2
		if i := strings.IndexByte(g.text[half:], ' '); i >= 0 { // Gmail breaks lines at spaces
			half += i
		}
		lines := []string{fmt.Sprintf("%d-%s", g.code, g.text[:half]), fmt.Sprintf("%d %s %s", g.code, strings.TrimSpace(g.text[half:]), gmailID)}
		for _, s := range []string{strings.Join(lines, "\r\n"), strings.Join(lines, " "), fmt.Sprintf("%d %s %s", g.code, g.text, gmailID)} {
			u, err := ParseReply(s)
			if err != nil {
				t.Fatal(err)
			}
			if v := DefaultRules().Classify(u); v.Action != want {
				t.Errorf("gmail-replies.txt:%d without enhanced codes: %v; want %v\n%s", g.line, v, want, s)
			}
		}
	}
}

// TestRevPFE3NeverBlockNow: the domains asked for at each decision (the
// canonical maps' targets, which change with their tables) are never
// blocked, nor a parent of one, whatever the case of the sender or of
// Gmail's [domain 30].
func TestRevPFE3NeverBlockNow(t *testing.T) {
	targets := []string{"mail.owner.example"}
	p := Policy{Rules: DefaultRules(), NeverBlockNow: func() []string { return targets }}
	const domainRep = "550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. 550 5.7.1 x2 - gsmtp"
	const dkim = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain [Owner.EXAMPLE 30]. 421 4.7.28 x3 - gsmtp"
	client := netip.MustParseAddr("203.0.113.7")
	for _, c := range []struct{ from, reply string }{
		{"X@Mail.Owner.Example", domainRep},
		{"x@sub.mail.owner.example", domainRep},
		{"x@client.example", dkim},
	} {
		pl := Decide(p, Refusal{Client: client, From: c.from, To: []string{"u@gmail.com"},
			Upstream: Upstream{Reply: textReply(c.reply), Host: "gmail-smtp-in.l.google.com"}})
		if pl.Action != Report || pl.Domain != "" {
			t.Errorf("%s, %.40s: %v %q (%s); want a report", c.from, c.reply, pl.Action, pl.Domain, pl.Why)
		}
	}
	targets = nil // the table changed
	pl := Decide(p, Refusal{Client: client, From: "x@mail.owner.example", To: []string{"u@gmail.com"},
		Upstream: Upstream{Reply: textReply(domainRep), Host: "gmail-smtp-in.l.google.com"}})
	if pl.Action != BlockDomain || pl.Domain != "mail.owner.example" {
		t.Errorf("after the table changed: %v %q; want the block", pl.Action, pl.Domain)
	}
}

// TestRevPFE3KeyWithoutAddresses: the relay's own address in Gmail's text
// does not make a retry from another address a new refusal; another text
// does.
func TestRevPFE3KeyWithoutAddresses(t *testing.T) {
	v := Verdict{Action: Encapsulate}
	const r = "421-4.7.26 Authentication results: DKIM = did not pass SPF [one.example] with ip: [%s] = did not pass 421 4.7.26 [%s 15] %s - gsmtp"
	k := Key(v, "u@gmail.com", textReply(fmt.Sprintf(r, "192.0.2.25", "192.0.2.25", "s1")))
	if k2 := Key(v, "u@gmail.com", textReply(fmt.Sprintf(r, "2001:db8::25", "2001:db8::25", "s2"))); k2 != k {
		t.Errorf("retry from another address: key %s; want %s", k2, k)
	}
	if k3 := Key(v, "u@gmail.com", textReply(fmt.Sprintf(strings.Replace(r, "one.example", "two.example", 1), "192.0.2.25", "192.0.2.25", "s3"))); k3 == k {
		t.Error("another text, the same key")
	}
}
