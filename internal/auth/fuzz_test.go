package auth

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadSecrets feeds arbitrary files to LoadSecrets: it must not panic,
// every error line must carry the file name and a line number, and a file
// that loads must answer every query.
func FuzzLoadSecrets(f *testing.F) {
	for _, seed := range []string{
		"server plain alice p+3Dss\nclient plain user+40gmail.com app-password\n",
		"server plain:b YWxpY2U= cHc=\nclient plain:b = = sel\n",
		"server md5 dave " + MD5State("davepw") + "\nserver md5 erin 1.2.3.4.5.6.7.8\n",
		"server bcrypt bob $2a$04$0Sb11u/hI/9JLimz0tIKVeqHIb3q4ur.rq3powXURHJMnet1iIXmy\n",
		"server none 192.168.0.* lan\nserver none fd00::/8 ula\nserver none ::1 lo\n",
		"login server a b\nlogin client c d\n# comment\n\n",
		"client oauth me ya29 google\nclient md5 m " + MD5State("x") + " sel\n",
		"server plain a+2\nsever x y z\nserver none 10.*.1.* x\n",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "secrets")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSecrets(path)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Fatalf("error line %q lacks %s:LINE:", line, path)
				}
			}
			return
		}
		s.Mechanisms(true, false)
		s.Trusted(netip.MustParseAddr("192.168.0.1"))
		s.Trusted(netip.MustParseAddr("fd00::1"))
		for sel := range s.clients {
			if f, ok := s.ClientAuth(sel); ok && f != nil {
				f.Client([]string{"CRAM-MD5", "PLAIN", "LOGIN", "XOAUTH2"})
			}
		}
		// Verify only for users without bcrypt: real bcrypt is slow.
		if s.dummyHash == nil {
			for user := range s.users {
				s.Verify(user, "x")
			}
		}
	})
}

// FuzzSenderLogins feeds arbitrary tables to the sender-login parser: no
// panics, and every key that loads is owned by each of its logins.
func FuzzSenderLogins(f *testing.F) {
	f.Add(senderTable)
	f.Add("a@b c\n  d, e\n#x\n@b f\n")
	f.Add("bare user\n@ x\n\t\tcont\n")
	f.Add("A@B.C  x,,y\tz\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		tl, err := parseSenderLogins("f", strings.NewReader(text))
		if err != nil {
			return
		}
		for key, logins := range tl.owners {
			if key[0] == '@' {
				if _, ok := tl.owners["someone"+key]; ok {
					continue // that sender has its own entry
				}
				key = "someone" + key
			}
			for _, l := range logins {
				if !tl.Owns(l, key) {
					t.Fatalf("Owns(%q, %q) = false; the table lists it", l, key)
				}
			}
		}
	})
}
