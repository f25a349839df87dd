package auth

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSASLServer feeds a client's AUTH exchange (PLAIN, LOGIN or CRAM-MD5,
// any initial response and any answers to the challenges) to the SMTP
// server's mechanisms, for a secrets file where alice's password is
// s3cret and bob's is an md5 state: the exchange never panics, and it
// succeeds only as a known user, and only with that user's password among
// the client's answers (no CRAM-MD5 digest is guessed).
func FuzzSASLServer(f *testing.F) {
	for _, s := range [][]string{
		{"\x00alice\x00s3cret"}, {"alice\x00alice\x00s3cret"}, {"bob\x00alice\x00s3cret"}, {"\x00alice\x00s3cret\x00"},
		{"", "alice", "s3cret"}, {"alice", "s3cret"}, {"", "alice 0123456789abcdef0123456789abcdef"}, {"\x00alice\x00"},
		{"\x00\x00"}, {"", "", ""}, {"", " "}, {"", "alice", "s3cret", "again"},
	} {
		f.Add(byte(0), strings.Join(s, "\n"))
		f.Add(byte(1), strings.Join(s, "\n"))
		f.Add(byte(2), strings.Join(s, "\n"))
	}
	secrets, err := parseSecrets("test.secrets", strings.NewReader("server plain alice s3cret\nserver md5 bob "+MD5State("b0bpw")+"\n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mech byte, exchange string) {
		name := []string{"PLAIN", "LOGIN", "CRAM-MD5"}[int(mech)%3]
		var who []string
		srv, err := secrets.Server(name, func(identity string) { who = append(who, identity) })
		if err != nil {
			t.Fatal(err)
		}
		resps := strings.Split(exchange, "\n")
		var first []byte
		if resps[0] != "" || name == "PLAIN" {
			first = []byte(resps[0]) // an initial response
		}
		done := false
		var authErr error
		for i := 0; i < len(resps) && !done && authErr == nil; i++ {
			r := first
			if i > 0 {
				r = []byte(resps[i])
			}
			_, done, authErr = srv.Next(r)
		}
		if len(who) > 1 {
			t.Fatalf("%s %q: logged in %d times", name, exchange, len(who))
		}
		if len(who) == 1 {
			if authErr != nil || !done {
				t.Fatalf("%s %q: logged in as %q, then %v", name, exchange, who[0], authErr)
			}
			pw := map[string]string{"alice": "s3cret", "bob": "b0bpw"}[who[0]]
			if pw == "" || name == "CRAM-MD5" || !bytes.Contains([]byte(exchange), []byte(pw)) {
				t.Fatalf("%s %q: logged in as %q", name, exchange, who[0])
			}
		}
	})
}
