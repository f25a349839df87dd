package enforce

import (
	"os"
	"strings"
	"testing"
)

// FuzzReplyFilter: any filter file and reply: no panic, the same answer
// every time, a rewritten reply starts with a code, and a refusal becomes
// a success only when the message was forwarded encapsulated.
func FuzzReplyFilter(f *testing.F) {
	seed, err := os.ReadFile("testdata/smtp_dsn_rw_filter.pcre")
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []string{gmailDMARCOld, gmailAuth421, gmailBulk, gmailTemp, gmailOK, bulk28, "550-a\n250 b"} {
		f.Add(seed, r, true)
		f.Add([]byte(DefaultReplyFilterText()), r, false)
	}
	f.Add([]byte("if /a/\n/(b)/ 250 $1\nendif\n!/c/ 550 x\n/^5/ 250 ${1\n"), "550-a b\n550 c", false)
	f.Add([]byte("/(x)?y/ $1 z\n"), "450 y", false)
	f.Fuzz(func(t *testing.T, filter []byte, reply string, encapsulated bool) {
		fl, err := ParseReplyFilter("fuzz.pcre", filter)
		if err != nil {
			return
		}
		got, ok := fl.RewriteFor(reply, encapsulated)
		if got2, ok2 := fl.RewriteFor(reply, encapsulated); got2 != got || ok2 != ok {
			t.Fatalf("RewriteFor(%q) = %q, %v, then %q, %v", reply, got, ok, got2, ok2)
		}
		if !ok {
			if got != reply {
				t.Fatalf("RewriteFor(%q) = %q, false: want the reply unchanged", reply, got)
			}
			return
		}
		if !startsWithCode(got) {
			t.Fatalf("RewriteFor(%q) = %q: no reply code", reply, got)
		}
		if lines := splitReply(joinLines(reply)); !encapsulated && lines != nil && lines[0].code >= 400 && strings.HasPrefix(got, "2") {
			t.Fatalf("RewriteFor(%q, false) = %q: a refusal reported as delivered", reply, got)
		}
	})
}
