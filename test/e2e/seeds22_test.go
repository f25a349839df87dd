package e2e

// The seed documents' examples run as written (the seeds22 checker's):
// what earlier seed tests did not already cover.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// seeds22RefusedLog is a Postfix mail log of one message from 203.0.113.7
// that Gmail refused as unsolicited (a ban).
func seeds22RefusedLog() string { return seeds22RefusedLogFrom("spam.example") }

// seeds22RefusedLogFrom is seeds22RefusedLog with the client's host name.
func seeds22RefusedLogFrom(name string) string {
	const q = "4A0001ABC1"
	return fmt.Sprintf(`Nov 22 10:00:01 mx1 postfix/smtpd[100]: %[1]s: client=%[2]s[203.0.113.7]
Nov 22 10:00:01 mx1 postfix/cleanup[101]: %[1]s: message-id=<m-1@spam.example>
Nov 22 10:00:01 mx1 postfix/qmgr[102]: %[1]s: from=<bob@spam.example>, size=900, nrcpt=1 (queue active)
Nov 22 10:00:03 mx1 postfix/smtp[105]: %[1]s: to=<u1@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550 5.7.1 this message has been blocked. s1 - gsmtp (in reply to end of DATA command))
`, q, name)
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

// seeds22SimpleFilter is FILTER_README's simple content filter as the
// guide prints it, with its two "Localize these" lines set: INSPECT_DIR to
// inspect, and SENDMAIL to relaykeeper's sendmail (the binary linked as
// sendmail, as "make install-sendmail" installs it) with the relay's
// configuration file.
// extra is a line added before the re-injection.
func seeds22SimpleFilter(inspect, sendmail, conf, extra string) string {
	return `#!/bin/sh

# Localize these.
INSPECT_DIR=` + inspect + `
SENDMAIL="` + sendmail + ` -C ` + conf + ` -i"

# Exit codes from <sysexits.h>
EX_TEMPFAIL=75
EX_UNAVAILABLE=69

# Clean up when done or when aborting.
trap "rm -f in.$$" 0 1 2 3 15

# Start processing.
cd $INSPECT_DIR || { echo $INSPECT_DIR does not exist; exit $EX_TEMPFAIL; }

cat >in.$$ || { echo Cannot save mail to file; exit $EX_TEMPFAIL; }

# filter <in.$$ || { echo Message content rejected; exit $EX_UNAVAILABLE; }
` + extra + `
$SENDMAIL "$@" <in.$$

exit $?
`
}

// TestSeeds22SimpleContentFilter: FILTER_README's simple content filter
// script, run as its master.cf line runs it (argv=/some/where/filter -f
// ${sender} -- ${recipient}) through --filter pipe:, hands the message
// back with sendmail. Each message reaches the smarthost once, filtered:
// the copy sendmail is given is the filter's answer, not a second message
// queued beside the original (which went out twice). Another message the
// script sends with sendmail (a notice to the administrator) is queued as
// a message of its own, and so is one sent by sendmail outside a filter.
func TestSeeds22SimpleContentFilter(t *testing.T) {
	t.Parallel()
	t.Run("as written", func(t *testing.T) { t.Parallel(); seeds22SimpleContentFilter(t, false) })
	t.Run("with a notice", func(t *testing.T) { t.Parallel(); seeds22SimpleContentFilter(t, true) })
}

func seeds22SimpleContentFilter(t *testing.T, notice bool) {
	sink := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	spool := t.TempDir()
	conf := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf("[spool]\ndir = %q\n", spool), 0o644)
	sendmail := filepath.Join(sendmailNames(t), "sendmail")
	inspect := filepath.Join(dir, "inspect")
	if err := os.Mkdir(inspect, 0o755); err != nil {
		t.Fatal(err)
	}
	extra, want := "", 1
	if notice {
		extra, want = `printf 'Subject: filtered\n\nchecked\n' | $SENDMAIL -f filter@example.org admin@example.org`, 2
	}
	script := writeFile(t, dir, "filter", seeds22SimpleFilter(inspect, sendmail, conf, extra), 0o755)
	r := startRelay(t, "127.0.0.1", "--config", conf, "--as-server", "--interface", "127.0.0.1",
		"--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--filter", "pipe:"+script+" -f ${sender} -- ${recipient}")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("through the simple filter"))
	sink.WaitTransactions(t, want, 15*time.Second)
	time.Sleep(3 * time.Second) // a second copy, if any, goes within a poll or two
	got := sink.Transactions()
	var msgs []string
	for _, tx := range got {
		msgs = append(msgs, fmt.Sprintf("%s -> %v (id %q)", tx.MailFrom, tx.To(), receivedID(strings.ReplaceAll(string(tx.Data), "\r\n", "\n"))))
	}
	var orig []harness.Transaction
	for _, tx := range got {
		if tx.MailFrom == "alice@example.org" {
			orig = append(orig, tx)
		}
	}
	if len(got) != want || len(orig) != 1 {
		t.Fatalf("the smarthost got %d messages %q; want the one message, once (and the notice: %v)", len(got), msgs, notice)
	}
	if !slices.Equal(orig[0].To(), []string{"bob@example.net"}) || !strings.Contains(string(orig[0].Data), "Subject: through the simple filter") ||
		strings.Contains(string(orig[0].Data), "Subject: filtered") {
		t.Errorf("the smarthost got %s -> %v:\n%s", orig[0].MailFrom, orig[0].To(), orig[0].Data)
	}
	if files, _ := os.ReadDir(inspect); len(files) != 0 {
		t.Errorf("the script left %d files in INSPECT_DIR", len(files))
	}

	// Outside a filter, sendmail queues as before.
	_, errOut, code := runBinary(t, sendmail, "Subject: direct\n\nhello\n", "-C", conf, "-i", "-f", "carol@example.org", "--", "dave@example.net")
	if code != 0 {
		t.Fatalf("sendmail outside a filter: exit %d: %s", code, errOut)
	}
	waitFor(15*time.Second, func() bool { return len(sink.Transactions()) == want+1 })
	if got := sink.Transactions(); len(got) != want+1 || got[want].MailFrom != "carol@example.org" {
		t.Errorf("sendmail outside a filter: the smarthost has %d messages; want the direct one too", len(got))
	}
}

// TestSeeds22WelcomelistEgrepWordAnchors: relay-enforcer's manual says
// the welcomelist's host-name patterns use egrep's syntax. GNU egrep's
// word anchors \< and \> were taken by Go's regexp as a literal < and >, so
// a pattern such as \<partner\.example$ never matched and the partner's
// client was banned. They now anchor at a word's edge, as in egrep.
func TestSeeds22WelcomelistEgrepWordAnchors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		pattern, client string
		welcome         bool
	}{
		{`partner\.example$`, "mx1.partner.example", true},
		{`\<partner\.example$`, "mx1.partner.example", true},
		{`\<partner\.example\>`, "mx1.partner.example", true},
		{`\<partner\.example$`, "mx1.counterpartner.example", false},
	} {
		t.Run(tt.pattern+" "+tt.client, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			logFile := writeFile(t, dir, "mail.log", seeds22RefusedLogFrom(tt.client), 0o644)
			wl := writeFile(t, dir, "welcomelist", "# relay-enforcer.welcomelist\n"+tt.pattern+"\n", 0o644)
			out := enforcerOnce(t, nil, append(enforcerArgs(logFile, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"), wl,
				filepath.Join(dir, "bans.log"), "127.0.0.1:9"), "-t")...)
			banned := strings.Contains(out, "would-ban client=203.0.113.7")
			// Welcomelisted, the client is not banned: its message would
			// be encapsulated (here only reported: there is no backup).
			if banned == tt.welcome {
				t.Errorf("welcomelist %q, client %s: postfix-enforcer -t printed\n%s\nwant welcomelisted %v", tt.pattern, tt.client, out, tt.welcome)
			}
		})
	}
}

// TestSeeds22RegexpTableWordAnchors: a Postfix regexp: table is POSIX ERE
// compiled by glibc, where \< and \> anchor at a word's edge. relaykeeper
// compiled them as a literal < and >, so a header check such as
// /^Subject:.*\<viagra\>/ REJECT, which Postfix applies, never matched.
func TestSeeds22RegexpTableWordAnchors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks", `/^Subject:.*\<viagra\>/ REJECT no pills here
`, 0o644)
	r := opsRelay(t, "127.0.0.1:9", "[policy]\nheader_checks = \"regexp:"+hc+"\"\n")
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: cheap viagra now\n\nbuy\n")
	if err == nil || tx.Final.code() != 550 || !strings.Contains(tx.Final.String(), "no pills here") {
		t.Errorf("Subject: cheap viagra now: %v, %q; want 550 ... no pills here", err, tx.Final)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: viagrafalls trip\n\nhi\n")
}
