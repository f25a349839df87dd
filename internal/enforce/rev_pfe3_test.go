package enforce

import (
	"fmt"
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
