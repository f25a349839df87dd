package filter

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAud6SpamAssassinGetsTheContentAlone: a program named spamassassin
// (the guide's --filter "/usr/bin/spamassassin --exit-code", and its
// Windows spamassassin.bat) is given the content file alone, since it would
// check the envelope as a second message; every other program still gets
// both paths, as E-MailRelay passes them.
func TestAud6SpamAssassinGetsTheContentAlone(t *testing.T) {
	const body = `for a in "$@"; do case "$a" in *.envelope*) echo "<<550 got the envelope>>"; exit 1;; esac; done; exit 0`
	for _, name := range []string{"spamassassin", "SpamAssassin.bat"} {
		sa := script(t, name, body)
		c, e := message(t, testContent)
		if r := mustParse(t, sa+" --exit-code", Server, 10*time.Second).Run(context.Background(), c, e); r.Outcome != OK {
			t.Errorf("%s --exit-code: %v; want ok (the content path alone)", name, r)
		}
	}
	other := script(t, "addsig", body)
	c, e := message(t, testContent)
	if r := mustParse(t, other, Server, 10*time.Second).Run(context.Background(), c, e); r.Outcome != Reject || !strings.Contains(r.Text, "envelope") {
		t.Errorf("another program: %v; want it given the envelope path too", r)
	}
}

// TestAud6SpamAssassinGuideFormWithTheRealProgram: the guide's
// --filter "/usr/bin/spamassassin --exit-code" with the real SpamAssassin
// refuses GTUBE and passes a clean message (it used to refuse every one).
func TestAud6SpamAssassinGuideFormWithTheRealProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping spamassassin in -short mode")
	}
	f := mustParse(t, ensureSpamAssassin(t, "spamassassin")+" --exit-code", Server, time.Minute)
	c, e := message(t, gtube)
	if r := f.Run(context.Background(), c, e); r.Outcome != Reject || r.Code != 550 {
		t.Errorf("GTUBE: %v; want reject 550", r)
	}
	c, e = message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Errorf("a clean message: %v; want ok", r)
	}
	if got := readFile(t, c); !strings.HasPrefix(got, "Received: ") {
		t.Errorf("content = %q; want it unchanged (spamassassin's output is not the message)", got)
	}
}
