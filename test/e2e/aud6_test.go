package e2e

import (
	"bufio"
	"fmt"
	"net"
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

// TestAud6AdminOnPOPOnlyRelay drives the admin interface of the guide's
// POP-only server (--pop --no-smtp) as an E-MailRelay script would. Its
// status said "listening: <none>" although POP3 and the admin port
// listened; "smtp enable" and "dnsbl start" answered OK, and nothing was
// enabled (status went on saying disabled).
func TestAud6AdminOnPOPOnlyRelay(t *testing.T) {
	t.Parallel()
	secrets := writeFile(t, t.TempDir(), "pop.auth", "server plain alice s3cret\n", 0o600)
	popPort, adminPort := harness.FreePort(t), harness.FreePort(t)
	popAddr, adminAddr := fmt.Sprintf("127.0.0.1:%d", popPort), fmt.Sprintf("127.0.0.1:%d", adminPort)
	harness.StartWith(t, harness.ProcOptions{WaitAddr: adminAddr}, harness.Binary(t),
		"--pop", "--no-smtp", "--log", "--pop-auth", secrets, "--pop-port", fmt.Sprint(popPort),
		"--admin", fmt.Sprint(adminPort), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c, err := net.Dial("tcp", adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	cmd := func(line string) string {
		fmt.Fprintf(c, "%s\r\n", line)
		var out strings.Builder
		for !strings.HasSuffix(out.String(), "E-MailRelay> ") {
			b, err := br.ReadByte()
			if err != nil {
				t.Fatalf("%s: %v after %q", line, err, out.String())
			}
			out.WriteByte(b)
		}
		return strings.TrimSuffix(out.String(), "E-MailRelay> ")
	}
	if st := cmd("status"); !strings.Contains(st, "listening: pop="+popAddr+" admin="+adminAddr+"\r\n") {
		t.Errorf("status = %q; want the line \"listening: pop=%s admin=%s\"", st, popAddr, adminAddr)
	}
	for line, want := range map[string]string{
		"smtp enable": "error: no SMTP listener to enable (--no-smtp)\r\n",
		"dnsbl start": "error: no DNSBL check configured (--dnsbl)\r\n",
	} {
		if got := cmd(line); got != want {
			t.Errorf("%s: %q; want %q", line, got, want)
		}
	}
}
