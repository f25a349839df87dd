package enforce

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestGm22AdminRuleNotGmailVerdict: Google marks the refusals that a
// Google Workspace administrator's own rule made ("550 5.7.1 This message
// violates example.com email policy. - gcdp <session> - gsmtp"), and such
// a rule's rejection text is whatever the administrator typed. It comes
// from Google's MX (aspmx.l.google.com, trusted), so anyone with a
// Workspace domain could have a relay's client banned, or the domain it
// sends as blocked, by rejecting its mail in Gmail's words. Those words
// are the recipient domain's, not Gmail's verdict: reported, never a
// sanction, and its alerts counted apart from Gmail's own.
func TestGm22AdminRuleNotGmailVerdict(t *testing.T) {
	p := Policy{Rules: DefaultRules()}
	client := netip.MustParseAddr("203.0.113.4")
	const session = "a640c23a62f3a-7e5f9a5b1c2si123456766b.412"
	n := 0
	for _, g := range loadGmailReplies(t) {
		if g.want != Ban && g.want != BlockDomain && g.want != Alert {
			continue
		}
		forms := func(words []string) []string {
			return []string{
				gm22Split(g.code, g.enh, words, nil, "")[0],
				strings.Join(gm22Split(g.code, g.enh, words, []int{len(words) / 2, len(words) - 3}, ""), "\r\n"),
				"host aspmx.l.google.com[142.250.102.27] said: " + strings.Join(gm22Split(g.code, g.enh, words, []int{len(words) - 2}, ""), " ") +
					" (in reply to end of DATA command)",
			}
		}
		gmail := forms(strings.Fields(g.text + " " + session + " - gsmtp"))
		for i, form := range forms(strings.Fields(g.text + " - gcdp " + session + " - gsmtp")) {
			u, err := ParseReply(form)
			if err != nil {
				t.Fatal(err)
			}
			u.Host, u.Stage = "aspmx.l.google.com", "data"
			rf := Refusal{Client: client, From: "alice@example.com", To: []string{"bob@workspace.example"}, Upstream: u}
			pl := Decide(p, rf)
			n++
			switch {
			case g.want == Alert && pl.Action != Alert:
				t.Errorf("line %d: Decide(%q) = %v; want alert still", g.line, form, pl.Action)
			case g.want != Alert && (pl.Action != Report || !strings.Contains(pl.Why, "gcdp")):
				t.Errorf("line %d: Decide(%q) = %v (%s); want report, as a Workspace administrator's rule (gcdp)", g.line, form, pl.Action, pl.Why)
			}
			e := &Enforcer{Policy: p}
			if got := e.cause(rf, "r"); got == "r" {
				t.Errorf("line %d: %q counts as Gmail's own for the hour's alert", g.line, form)
			}
			if got := e.upstreamLine(rf); !strings.Contains(got, "gcdp") {
				t.Errorf("line %d: the administrator hears the upstream as %q", g.line, got)
			}
			// Gmail's own reply, the same but for the marker, is acted on.
			u2, _ := ParseReply(gmail[i])
			u2.Host, u2.Stage = u.Host, u.Stage
			rf.Upstream = u2
			if pl := Decide(p, rf); pl.Action != g.want || e.cause(rf, "r") != "r" {
				t.Errorf("line %d: Gmail's own %q: Decide = %v; want %v", g.line, gmail[i], pl.Action, g.want)
			}
		}
	}
	if n == 0 {
		t.Fatal("no replies")
	}
}

// TestGm22AdminRuleForms: Google's marker with or without the session id
// between, in any case, is an administrator's rule; Gmail's own replies,
// and "gcdp" only in an address the upstream echoes, are not.
func TestGm22AdminRuleForms(t *testing.T) {
	for s, want := range map[string]bool{
		"550 5.7.1 This message violates example.com email policy. - gcdp - gsmtp":                        true,
		"550 5.7.1 This message violates example.com email policy. - gcdp x1 y2 - gsmtp":                  true,
		"550-5.7.1 Likely unsolicited mail. - GCDP\r\n550 5.7.1 a640c23a62f3a-7e5f9a5b1c2si1.412 - gsmtp": true,
		"550 5.1.1 <- gcdp x@example.com>: unknown - gsmtp":                                               false,
		"550 5.7.1 gcdp is not the marker x1 - gsmtp":                                                     false,
	} {
		if got := AdminRule(textReply(s)); got != want {
			t.Errorf("AdminRule(%q) = %v; want %v", s, got, want)
		}
	}
	for _, g := range loadGmailReplies(t) {
		if AdminRule(textReply(fmt.Sprintf("%d %s %s %s", g.code, g.enh, g.text, gmailID))) {
			t.Errorf("line %d: Gmail's own reply read as an administrator's rule", g.line)
		}
	}
}
