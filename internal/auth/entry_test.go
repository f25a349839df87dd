package auth

import (
	"strings"
	"testing"
)

func TestReadPassword(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"s3cret\r\nnext\n", "s3cret", ""},
		{"no newline", "no newline", ""},
		{"", "", "no password"},
		{"\n", "", "empty password"},
	} {
		got, err := ReadPassword(strings.NewReader(tc.in))
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ReadPassword(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestServerEntry(t *testing.T) {
	if got, err := ServerEntry("plain", "a b", "p w"); err != nil || got != "server plain a+20b p+20w" {
		t.Errorf(`ServerEntry(plain, "a b", "p w") = %q, %v; want "server plain a+20b p+20w"`, got, err)
	}
	if got, err := ServerEntry("md5", "", "pw"); err != nil || got != MD5State("pw") {
		t.Errorf("ServerEntry(md5, no user) = %q, %v; want the state alone", got, err)
	}
	if got, err := ServerEntry("bcrypt", "u", "pw"); err != nil || !strings.HasPrefix(got, "server bcrypt u $2") {
		t.Errorf("ServerEntry(bcrypt) = %q, %v; want a bcrypt line", got, err)
	}
	if _, err := ServerEntry("rot13", "u", "pw"); err == nil {
		t.Error("ServerEntry(rot13) = nil error; want one")
	}
}
