package e2e

// The seed documents' examples run as written (the seeds22 checker's):
// what earlier seed tests did not already cover.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// seeds22RefusedLog is a Postfix mail log of one message from 203.0.113.7
// that Gmail refused as unsolicited (a ban).
func seeds22RefusedLog() string {
	const q = "4A0001ABC1"
	return fmt.Sprintf(`Nov 22 10:00:01 mx1 postfix/smtpd[100]: %[1]s: client=spam.example[203.0.113.7]
Nov 22 10:00:01 mx1 postfix/cleanup[101]: %[1]s: message-id=<m-1@spam.example>
Nov 22 10:00:01 mx1 postfix/qmgr[102]: %[1]s: from=<bob@spam.example>, size=900, nrcpt=1 (queue active)
Nov 22 10:00:03 mx1 postfix/smtp[105]: %[1]s: to=<u1@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550 5.7.1 this message has been blocked. s1 - gsmtp (in reply to end of DATA command))
`, q)
}

// TestSeeds22EnforcerMailTo: relay-enforcer's manual gives "-m
// mail@address - send report on any action to mail@address (default:
// root)". "-m root", its default written out, hands the report to Postfix
// for root (Postfix qualifies it with $myorigin, as relay-enforcer's mail(1)
// does), and an address with a display name, as a mail client writes it,
// is mailed at its address: the envelope recipient is never the whole
// text.
func TestSeeds22EnforcerMailTo(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		m, rcpt string
		real    bool // through a real Postfix, relaying to the fake
	}{
		{"root", "root", false},
		{"root", "root@postfix.relaykeeper.test", true},
		{"admin@example.org", "admin@example.org", false},
		{"Relay Admin <admin@example.org>", "admin@example.org", false},
	} {
		t.Run(fmt.Sprintf("%s/postfix=%v", tt.m, tt.real), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			postfix := harness.NewFakeSMTP(t, harness.Script{})
			smtpAddr := postfix.Addr()
			if tt.real {
				// Postfix qualifies "root" with $myorigin
				// (postfix.relaykeeper.test) and relays it on.
				smtpAddr = harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(postfix.Addr())}).Addr()
			}
			logFile := writeFile(t, dir, "mail.log", seeds22RefusedLog(), 0o644)
			wl := writeFile(t, dir, "welcomelist", "# nobody is exempt\n", 0o644)
			args := append(enforcerArgs(logFile, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl,
				filepath.Join(dir, "bans.log"), smtpAddr), "-m", tt.m)
			p := harness.Start(t, harness.Binary(t), append([]string{"postfix-enforcer", "--once"}, args...)...)
			code, err := p.Wait(60 * time.Second)
			if code != 0 || err != nil {
				t.Fatalf("postfix-enforcer -m %q: exit %d, %v\nstderr:\n%s", tt.m, code, err, p.Stderr())
			}
			if !strings.Contains(p.Stdout(), "ban client=203.0.113.7") {
				t.Errorf("postfix-enforcer printed:\n%s\nwant a ban of 203.0.113.7", p.Stdout())
			}
			got := postfix.WaitTransactions(t, 1, 15*time.Second)
			if to := got[0].To(); !slices.Equal(to, []string{tt.rcpt}) || !got[0].Accepted() {
				t.Errorf("-m %q: the report went to %v (accepted %v); want RCPT TO:<%s>\nstderr:\n%s", tt.m, to, got[0].Accepted(), tt.rcpt, p.Stderr())
			}
			if data := string(got[0].Data); !strings.Contains(data, "Subject: relaykeeper postfix-enforcer: ban") {
				t.Errorf("the report is not about the ban:\n%s", data)
			}
		})
	}
}

// TestSeeds22RelayMailAddress: the relay's --mail (relay-enforcer's -m)
// with an address written as a mail client writes it, "Name <addr>",
// reports a ban to addr; a bare user name, which the relay has nowhere to
// deliver (it has no local mailboxes), is refused at start naming --mail,
// and so is text that is no address, in the configuration file with its
// FILE:LINE.
func TestSeeds22RelayMailAddress(t *testing.T) {
	t.Parallel()
	gmail := rep19Gmail(t, map[string]string{"spam": gmailUnsolicited})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{extra: []string{"--mail", "Relay Admin <admin@relay.test>"}})
	tx, err := sendFrom(r.addr(), "127.0.0.31", "eve@spam.example", []string{"spam@gmail.test"}, gmailMessage("eve@spam.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("spam send: %v %+v", err, tx)
	}
	r.waitEvent("ban", 15*time.Second, nil)
	if !waitFor(10*time.Second, func() bool { return len(rep19Txs(gmail, rep19ToAdmin)) > 0 }) {
		var got []string
		for _, tx := range gmail.Transactions() {
			got = append(got, tx.Rcpts[0].Addr+" "+tx.Rcpts[0].Reply)
		}
		t.Errorf("no ban report reached admin@relay.test; the fake saw RCPTs %q", got)
	}

	for _, bad := range []string{"root", "admin@", "Admin <admin@relay.test"} {
		_, code, stderr := cfg19Start(t, "", "--forward-to", "127.0.0.1:9", "--forward-on-disconnect", "--mail", bad)
		if code <= 0 || !strings.Contains(stderr, "--mail") {
			t.Errorf("--mail %q: exit %d, stderr %q; want a refusal at start naming --mail", bad, code, stderr)
		}
	}
	cfg19Refused(t, "[enforce]\nmail = \"root\"\n", 2, "enforce.mail")
}
