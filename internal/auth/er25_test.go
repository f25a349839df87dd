package auth

import (
	"net/netip"
	"strings"
	"testing"
)

// TestER25TrailingComment: E-MailRelay 2.6 takes a word starting with '#'
// after a line's four fields (or after a client line's selector) as the
// start of a comment ("server plain alice secret # the shop"), so such a
// secrets file works there. relaykeeper refused the whole file ("too many
// fields"), and the relay would not start.
func TestER25TrailingComment(t *testing.T) {
	const file = "server plain alice secret # the shop's login\n" +
		"server none 192.168.0.* lan #trusted\n" +
		"APOP server bob bobpw # E-MailRelay 1.x's form\n" +
		"client plain carol carolpw work # the work account\n" +
		"client plain dave davepw # the default account\n"
	s, err := parseSecrets("secrets", strings.NewReader(file))
	if err != nil {
		t.Fatalf("parseSecrets = %v; want the comments ignored, as E-MailRelay does", err)
	}
	for _, c := range []struct{ user, pass string }{{"alice", "secret"}, {"bob", "bobpw"}} {
		if !s.Verify(c.user, c.pass) {
			t.Errorf("Verify(%q, %q) = false; want true", c.user, c.pass)
		}
	}
	if kw, ok := s.Trusted(netip.MustParseAddr("192.168.0.7")); !ok || kw != "lan" {
		t.Errorf("Trusted(192.168.0.7) = %q, %v; want lan, true", kw, ok)
	}
	for sel, want := range map[string]string{"work": "carol", "": "dave"} {
		if l, ok := s.ClientAuth(sel); !ok || l == nil || l.c.user != want {
			t.Errorf("ClientAuth(%q) = %+v, %v; want %s", sel, l, ok, want)
		}
	}
	// A fifth word that is not a comment is still refused on a server line.
	if _, err := parseSecrets("secrets", strings.NewReader("server plain alice secret extra\n")); err == nil {
		t.Error("parseSecrets(server line with five words) = nil error; want too many fields")
	}
}
