package enforce

import "testing"

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
