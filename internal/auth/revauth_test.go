package auth

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestRevAuthClientAccounts: a client file with selector lines gives a
// remote.Accounts whose Account picks each selector's line, an untyped nil
// for "= =" (no login) and ok false for a selector without a line; a file
// without selectors gives the default line as before (nil for "= =").
func TestRevAuthClientAccounts(t *testing.T) {
	load := func(text string) *Secrets {
		t.Helper()
		s, err := parseSecrets("test.secrets", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	user := func(a remote.Authenticator) string {
		if a == nil {
			return "(none)"
		}
		return a.(*ClientLogin).c.user
	}

	a, ok := load("client plain home pw\nclient plain work pw2 work\nclient plain = = direct\n").ClientAccounts()
	accts, isAccts := a.(remote.Accounts)
	if !ok || !isAccts {
		t.Fatalf("ClientAccounts with selectors = %T, %v; want a remote.Accounts", a, ok)
	}
	for sel, want := range map[string]string{"": "home", "work": "work", "direct": "(none)"} {
		got, ok := accts.Account(sel)
		if !ok || user(got) != want {
			t.Errorf("Account(%q) = %s, %v; want %s", sel, user(got), ok, want)
		}
	}
	if got, ok := accts.Account("nosuch"); ok || got != nil {
		t.Errorf("Account(\"nosuch\") = %v, %v; want nil, false", got, ok)
	}

	if a, ok := load("client plain home pw\n").ClientAccounts(); !ok || user(a) != "home" {
		t.Errorf("ClientAccounts without selectors = %T %v; want the default line", a, ok)
	}
	if a, ok := load("client plain = =\n").ClientAccounts(); !ok || a != nil {
		t.Errorf("ClientAccounts of \"= =\" alone = %#v, %v; want nil, true", a, ok)
	}
	if a, ok := load("client plain = =\nclient plain work pw work\n").ClientAccounts(); !ok || a == nil {
		t.Errorf("ClientAccounts of \"= =\" with a selector line = %#v, %v; want Accounts", a, ok)
	} else if d, _ := a.(remote.Accounts).Account(""); d != nil {
		t.Errorf("default account of \"= =\" = %#v; want nil (no login)", d)
	}
	if _, ok := load("client plain work pw work\n").ClientAccounts(); ok {
		t.Error("ClientAccounts without a default line: ok; want false")
	}
}

// TestRevAuthOAuth2TokenURLNeedsTLS: the token request carries the client
// secret and the refresh token, which are as good as the account's
// password. A token URL written with http:// (a typo for Google's, or an
// endpoint copied from a test set-up) sent them in plain text over the
// network at every refresh, where every other credential goes only over
// verified TLS. Only a token endpoint on this host may be plain http.
func TestRevAuthOAuth2TokenURLNeedsTLS(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://oauth2.googleapis.com/token", false},
		{"http://192.0.2.7:8080/token", false},
		{"HTTP://oauth2.googleapis.com/token", false},
		{"https://oauth2.googleapis.com/token", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://[::1]:8080/token", true},
		{"http://localhost:8080/token", false}, // a name may resolve elsewhere
	} {
		_, err := parseSecrets("secrets", strings.NewReader("client oauth2 me a,b,c,"+tc.url+"\n"))
		if (err == nil) != tc.ok {
			t.Errorf("token URL %s: err %v; want ok=%v", tc.url, err, tc.ok)
		}
	}
}

// TestRevAuthLoadClientSecretsInline: E-MailRelay's inline --client-auth
// form; a malformed one is refused without echoing the secret.
func TestRevAuthLoadClientSecretsInline(t *testing.T) {
	s, err := LoadClientSecrets("plain:dXNlcg==:cGFzcw==")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := s.ClientAuth(""); !ok || l == nil || l.c.user != "user" || l.c.password != "pass" {
		t.Errorf("plain:dXNlcg==:cGFzcw== gave %+v, %v; want user/pass", l, ok)
	}
	for _, bad := range []string{"plain:dXNlcg==", "plain::cGFzcw==", "plain:dXNlcg==:!!secret!!", "plain:dXNlcg==:cGFz cw=="} {
		_, err := LoadClientSecrets(bad)
		if err == nil || strings.Contains(err.Error(), "secret!!") || strings.Contains(err.Error(), "cGFz") {
			t.Errorf("LoadClientSecrets(%q) = %v; want an error that does not show the password", bad, err)
		}
	}
}
