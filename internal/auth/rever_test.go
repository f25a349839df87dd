package auth

import (
	"strings"
	"testing"
)

// E-MailRelay's --client-auth also takes the account inline,
// "plain:BASE64-USER:BASE64-PASSWORD"; relaykeeper tried to open a file of
// that name ("open plain:Ym9i:c2VjcmV0: no such file or directory").
// And "pam:" is refused saying so, not as a missing file.
func TestRevERInlineClientAuth(t *testing.T) {
	s, err := LoadClientSecrets("plain:Ym9iQGV4YW1wbGUuY29t:cy9lK2NyZXQ=")
	if err != nil {
		t.Fatalf("LoadClientSecrets(plain:...) = %v", err)
	}
	l, ok := s.ClientAuth("")
	if !ok || l == nil || l.c.user != "bob@example.com" || l.c.password != "s/e+cret" {
		t.Fatalf("ClientAuth() = %+v, %v; want bob@example.com with s/e+cret", l, ok)
	}
	if _, err := LoadClientSecrets("plain:not base64:x"); err == nil {
		t.Error("LoadClientSecrets(plain:not base64:x) = nil error")
	}
	if _, err := LoadClientSecrets("pam:"); err == nil || !strings.Contains(err.Error(), "PAM") {
		t.Errorf("LoadSecrets(pam:) = %v; want PAM named as not supported", err)
	}
}
