package verify

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A verifier program that dies says exit 1 and nothing on its standard
// output: a Python verifier's uncaught exception (its traceback goes to
// standard error), a shell script under "set -e" whose lookup fails, an
// empty script. Exit 1 is also "valid remote recipient", but only with the
// address on line 2; without it E-MailRelay refuses the recipient. It was
// accepted (as given, or as local with exit 0), so that a crashing verifier
// let every recipient through: an open relay where the verifier is what
// keeps strangers from relaying (the user guide's set-up).
func TestAud620VerifierWithoutItsAnswerNeverAccepts(t *testing.T) {
	for _, body := range []string{
		`echo 'Traceback (most recent call last):' >&2; echo 'ldap.SERVER_DOWN' >&2; exit 1`,
		"set -e\nfalse\necho; echo \"$1\"; exit 1",
		`exit 1`,
		`echo "Alice Liddell"; exit 1`,
		`exit 0`,
		`echo "Alice Liddell"; exit 0`,
	} {
		v := verifier(t, body, 10*time.Second)
		got := v.Verify(context.Background(), testReq)
		if got.Kind != TempFail || got.Code != 450 || got.Text != UnavailableText || got.Reason == "" {
			t.Errorf("verifier %q: %+v; want a verifier failure (TempFail 450 %q, with the reason)", body, got, UnavailableText)
		}
	}

	srv := startNetVerifier(t, func(f []string) string {
		switch strings.ToLower(f[0]) {
		case "one@example.com":
			return "1"
		case "empty@example.com":
			return "1|"
		case "zero@example.com":
			return "0"
		}
		return "0||Full Name"
	})
	v, err := New("net:"+srv.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, rcpt := range []string{"one@example.com", "empty@example.com", "zero@example.com", "noname@example.com"} {
		req := testReq
		req.Recipient = rcpt
		if got := v.Verify(context.Background(), req); got.Kind != TempFail || got.Code != 450 {
			t.Errorf("net: verifier on %s: %+v; want TempFail 450", rcpt, got)
		}
	}
}
