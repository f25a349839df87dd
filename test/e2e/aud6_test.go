package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

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

// TestAud6FilterExit104Rescans: E-MailRelay's server filter exit 104 is
// "refuse, and rescan the spool" (docs/filters.md): the client hears the
// refusal and what waits in the spool is forwarded now. relaykeeper refused
// the message but forgot the rescan, so the waiting message stayed put;
// 102 (abandon and rescan) already forwarded it.
func TestAud6FilterExit104Rescans(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"104", "102"} {
		sink := harness.NewFakeSMTP(t, harness.Script{})
		spool := t.TempDir()
		sub := exec.Command(harness.Binary(t), "submit", "--spool-dir", spool, "-f", "alice@example.org", "waiting@example.net")
		sub.Stdin = strings.NewReader("Subject: waiting\n\nqueued before the relay started\n")
		if out, err := sub.CombinedOutput(); err != nil {
			t.Fatalf("submit: %v: %s", err, out)
		}
		r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
			"--forward-to", sink.Addr(), "--filter", "exit:"+code)
		tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("filtered"))
		if want := map[string]int{"104": 550, "102": 250}[code]; tx.Final.code() != want {
			t.Errorf("exit:%s: the client heard %v, %q; want %d", code, err, tx.Final, want)
		}
		sink.WaitTransactions(t, 1, 20*time.Second)
		if got := sink.Transactions()[0].To(); len(got) != 1 || got[0] != "waiting@example.net" {
			t.Errorf("exit:%s: the upstream got %v; want the waiting message", code, got)
		}
	}
}
