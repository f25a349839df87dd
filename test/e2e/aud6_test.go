package e2e

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud6SeedSpamAssassinExitCode is the guide's
// `emailrelay --as-server --filter "/usr/bin/spamassassin --exit-code"` as
// written, with the real SpamAssassin: GTUBE is refused at the final dot and
// a clean message is stored. The relay used to hand SpamAssassin the
// envelope file too, which it checked as a second message that scored as
// spam, so every message was refused.
func TestAud6SeedSpamAssassinExitCode(t *testing.T) {
	t.Parallel()
	sa := harness.Need(t, "spamassassin")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", sa+" --exit-code", "--filter-timeout", "60",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	gtube := "Subject: gtube\n\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"
	if tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, gtube); err == nil || tx.Final.code() != 550 {
		t.Errorf("GTUBE through spamassassin --exit-code = %v, %q; want 550", err, tx.Final)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("a perfectly ordinary note"))
	if ids := messageIDs(t, spool); len(ids) != 1 {
		t.Errorf("spool holds %d messages; want the clean one", len(ids))
	}
}
