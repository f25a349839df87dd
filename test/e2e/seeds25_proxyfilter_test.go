package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestSeeds25ProxyDsnRewriteFilter: relay-enforcer's smtp_dsn_rw_filter.pcre
// as written, named as docs/enforce-rules.md says ([enforce] reply_filter =
// "pcre:FILE"), in a proxy whose client hears Gmail's reply rewritten:
// Gmail's 421 for unsolicited mail becomes the filter's permanent 554
// ...-fmod_generic (its last line says "to review our Bulk", which the
// bulk line, anchored on "review", does not take; every line gets the new
// code), and the client is banned all the same; a DMARC refusal in the
// older wording the filter's rule was written for ("550 5.7.26 DMARC
// initiative ... gsmtp") is forwarded encapsulated and heard as the
// filter's 250 ...-fmod_dmarc; Gmail's "421 4.3.0 Temporary System
// Problem" stays temporary, cut to the words the "no change" rule keeps
// (docs/enforce-rules.md says so).
func TestSeeds25ProxyDsnRewriteFilter(t *testing.T) {
	t.Parallel()
	filter, err := os.ReadFile("../../internal/enforce/testdata/smtp_dsn_rw_filter.pcre")
	if err != nil {
		t.Fatal(err)
	}
	pcre := writeFile(t, t.TempDir(), "smtp_dsn_rw_filter.pcre", string(filter), 0o644)
	gmail := newFakeGmail(t)
	gmail.answer("rate@gmail.test", stData, gmailIPRateLimited)
	const dmarcOld = "550-5.7.26 Unauthenticated email from dmarc.example is not accepted due to\r\n" +
		"550-5.7.26 domain's DMARC policy. Please contact the administrator of\r\n" +
		"550-5.7.26 dmarc.example domain if this was a legitimate mail. Please visit\r\n" +
		"550-5.7.26  https://support.google.com/mail/answer/2451690 to learn about the\r\n" +
		"550 5.7.26 DMARC initiative. {id} - gsmtp"
	gmail.answer("dmarc@gmail.test", stData, dmarcOld)
	gmail.answer("temp@gmail.test", stData, "421 4.3.0 Temporary System Problem.  Try again later (10). {id} - gsmtp")
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true,
		config: "[enforce]\nban_delay = \"0s\"\nreply_filter = \"pcre:" + pcre + "\"\n"})

	tx, err := sendFrom(r.addr(), "127.0.5.1", "a@ok.example", []string{"rate@gmail.test"}, gmailMessage("a@ok.example", "rate limited"))
	if err != nil || len(tx.Final) == 0 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	last := tx.Final[len(tx.Final)-1]
	if !strings.HasPrefix(last, "554 5.7.0 ") || !strings.HasSuffix(last, "gsmtp-fmod_generic") {
		t.Errorf("421 unsolicited through the filter: client heard %q; want the filter's 554 5.7.0 ... gsmtp-fmod_generic", tx.Final)
	}
	for _, l := range tx.Final[:len(tx.Final)-1] {
		if !strings.HasPrefix(l, "554-5.7.0 ") {
			t.Errorf("line %q of %q: want every line 554-5.7.0", l, tx.Final)
		}
	}
	r.waitEvent("ban", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.5.1" })

	tx, err = sendFrom(r.addr(), "127.0.5.2", "alice@dmarc.example", []string{"dmarc@gmail.test"}, gmailMessage("alice@dmarc.example", "dmarc old"))
	if err != nil || len(tx.Final) == 0 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	last = tx.Final[len(tx.Final)-1]
	if !strings.HasPrefix(last, "250 2.0.0 DMARC initiative.") || !strings.HasSuffix(last, "gsmtp-fmod_dmarc") {
		t.Errorf("DMARC refusal through the filter: client heard %q; want the filter's 250 2.0.0 DMARC initiative. ... gsmtp-fmod_dmarc", tx.Final)
	}
	r.waitEvent("encapsulate", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.5.2" })

	tx, err = sendFrom(r.addr(), "127.0.5.3", "a@ok.example", []string{"temp@gmail.test"}, gmailMessage("a@ok.example", "temporary"))
	if err != nil || len(tx.Final) != 1 || strings.TrimSpace(tx.Final[0]) != "421 4.3.0 Temporary" {
		t.Errorf("421 4.3.0 Temporary System Problem through the filter: client heard %q (%v); want \"421 4.3.0 Temporary\"", tx.Final, err)
	}
}
