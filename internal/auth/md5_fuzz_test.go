package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"net/url"
	"strings"
	"testing"
)

// FuzzMD5State: a secrets file's md5 STATE field (base64, or E-MailRelay
// 1.x's dotted words) parses or is refused; a parsed state prints as
// base64 that parses back to it. For a password, MD5State's state parses
// and computes the same HMAC-MD5 as the password (what CRAM-MD5 checks).
func FuzzMD5State(f *testing.F) {
	for _, s := range []string{MD5State("s3cret"), "1.2.3.4.5.6.7.8", "4294967295.0.0.0.0.0.0.0", "4294967296.0.0.0.0.0.0.0", "........", "", "=", MD5State("")} {
		f.Add(s, "s3cret", []byte("<1896.697170952@postoffice.example.net>"))
	}
	f.Fuzz(func(t *testing.T, s, password string, challenge []byte) {
		if st, err := parseMD5State(s); err == nil {
			again, err := parseMD5State(st.String())
			if err != nil || again != st {
				t.Fatalf("parseMD5State(%q) = %v, whose String %q parses as %v, %v", s, st, st.String(), again, err)
			}
		}
		st, err := parseMD5State(MD5State(password))
		if err != nil {
			t.Fatalf("MD5State(%q) = %q does not parse: %v", password, MD5State(password), err)
		}
		h := hmac.New(md5.New, []byte(password))
		h.Write(challenge)
		if got := st.hmac(challenge); !hmac.Equal(got[:], h.Sum(nil)) {
			t.Fatalf("the state of %q computes another HMAC-MD5 of %q", password, challenge)
		}
	})
}

// FuzzOAuthCredentials: an oauth2 line's inline secret is read, or
// refused; what is read names a client, a secret and a refresh token, and
// a token URL that sends them over https, or over plain http only to a
// loopback address.
func FuzzOAuthCredentials(f *testing.F) {
	for _, s := range []string{
		"id,secret,refresh", "id,secret,refresh,https://oauth2.example/token", "id,secret,refresh,http://127.0.0.1:8080/token",
		"id,secret,refresh,http://localhost/token", "id,secret,refresh,http://127.0.0.1@evil.example/", "id,,refresh",
		"id,secret,refresh,http://[::1]/t", "id,secret,refresh,HTTP://evil.example/", "id,secret,refresh,https:evil",
		"id,secret,refresh,http://127.0.0.1%2f@evil.example/", "a,b,c,d,e",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, secret string) {
		if !strings.Contains(secret, ",") {
			return // a file name
		}
		c, err := parseOAuthCredentials(secret, dir)
		if err != nil {
			return
		}
		if c.ClientID == "" || c.ClientSecret == "" || c.RefreshToken == "" {
			t.Fatalf("parseOAuthCredentials(%q) = %+v", secret, c)
		}
		u, err := url.Parse(c.TokenURL)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname()))) {
			t.Fatalf("parseOAuthCredentials(%q): token URL %q (%v) would carry the secrets off the machine in clear", secret, c.TokenURL, err)
		}
	})
}
