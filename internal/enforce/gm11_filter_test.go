package enforce

import (
	"net/netip"
	"strings"
	"testing"
)

// TestGm11UnencapsulatedAuthStaysTemporary: a temporary refusal that the
// rules would answer by encapsulating (an authentication failure: the mail
// is probably good) stays temporary when no copy could be made (a proxy
// refused at MAIL or RCPT, with no message yet; a copy that could not be
// queued), as the relay's own notices refused so do: the sender tries
// again. The built-in reply filter's "Bulk Email" alternative, meant for
// Gmail's "review our Bulk Email Senders Guidelines", also took Gmail's
// 2024 SPF reply "421 4.7.27 ... Gmail requires all bulk email senders to
// authenticate their email with SPF" and made it a permanent 554 5.7.27
// (the relay then bounced the message), while its DKIM twin 4.7.30 ("all
// email bulk senders") stayed 421.
func TestGm11UnencapsulatedAuthStaysTemporary(t *testing.T) {
	p := Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}
	n := 0
	for _, g := range loadGmailReplies(t) {
		if g.want != Encapsulate || g.code >= 500 {
			continue
		}
		n++
		text := strings.Join(gmailLines(g.code, g.enh, g.text, 76), "\r\n")
		u, err := ParseReply(text)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "gmail-smtp-in.l.google.com"
		pl := Decide(p, Refusal{ID: "x", Client: netip.MustParseAddr("203.0.113.9"), From: "a@example.com",
			To: []string{"b@gmail.com"}, Upstream: u})
		if pl.Action != Encapsulate {
			t.Errorf("gmail-replies.txt:%d: %v; want encapsulate", g.line, pl.Action)
		}
		if pl.Undone.Code >= 500 {
			t.Errorf("gmail-replies.txt:%d (%d %s %.50s): heard %q when no copy is made; want a temporary refusal", g.line, g.code, g.enh, g.text, pl.Undone.String())
		}
	}
	if n < 7 {
		t.Fatalf("%d temporary encapsulate replies; want the 7 of gmail-replies.md", n)
	}
	// The rule still makes Gmail's temporary spam refusals permanent.
	for _, s := range []string{gmailBulk, bulk28, gmailSuspicious} {
		u, _ := ParseReply(s)
		if got, ok := DefaultReplyFilter().RewriteFor(u.Reply.String(), false); !ok || !strings.HasPrefix(got, "554 5.7.") {
			t.Errorf("RewriteFor(%q) = %q, %v; want 554 5.7.x", s, got, ok)
		}
	}
}

// TestGm11TemporarySanctionMadePermanent: every temporary refusal that
// bans the client or blocks its domain is heard as a permanent 554 5.7.x
// (and so bounced from the queue), so that the sender stops retrying what
// Gmail refuses again, as issue 11's table says for "a 4xx spam reply".
// Gmail's "421 4.7.28 ... this sender exceeded the quota for sending
// messages that have the same Message-ID" (a client stuck re-sending one
// message) banned the client but stayed 421: the client went on retrying
// the same message, and the relay held it queued rather than bouncing it.
func TestGm11TemporarySanctionMadePermanent(t *testing.T) {
	p := Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}
	n := 0
	for _, g := range loadGmailReplies(t) {
		if g.want != Ban && g.want != BlockDomain || g.code >= 500 {
			continue
		}
		n++
		u, err := ParseReply(strings.Join(gmailLines(g.code, g.enh, g.text, 76), "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		u.Host = "gmail-smtp-in.l.google.com"
		// The sender is of the domain the SPF and DKIM replies name.
		pl := Decide(p, Refusal{ID: "x", Client: netip.MustParseAddr("203.0.113.9"), From: "a@example.com",
			To: []string{"b@gmail.com"}, Upstream: u})
		if pl.Action != g.want {
			t.Errorf("gmail-replies.txt:%d: %v; want %v", g.line, pl.Action, g.want)
		}
		if pl.Heard.Code != 554 || !strings.HasPrefix(pl.Heard.Enhanced, "5.7.") {
			t.Errorf("gmail-replies.txt:%d (%d %s %.50s): heard %q; want 554 5.7.x", g.line, g.code, g.enh, g.text, pl.Heard.String())
		}
	}
	if n < 11 {
		t.Fatalf("%d temporary ban and block-domain replies; want the 11 of gmail-replies.md", n)
	}
}
