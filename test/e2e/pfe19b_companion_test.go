package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPfe19bSimpleFilterCopyNotEncapsulated: Postfix's simple content
// filter (FILTER_README): a pipe(8) service running a script as an
// unprivileged user, which re-injects the message with sendmail. pickup
// logs the copy as that user's local submission, with no link to the
// spammer's original ("delivered via filter service"). Gmail refuses the
// copy as unsolicited: it was taken for local mail and encapsulated
// (the spam sent to Gmail again, as the relay), or, without a backup
// mailbox, reported as local. Its client is now unknown: reported, no
// one banned, nothing re-sent; with --filter-user the user's copies are
// re-injections, and the administrator's own mail stays local.
func TestPfe19bSimpleFilterCopyNotEncapsulated(t *testing.T) {
	t.Parallel()
	filterUser, err := user.Lookup("nobody")
	if err != nil {
		harness.Missing(t, "a user for the content filter: %v", err)
	}
	sendmail, err := exec.LookPath("sendmail")
	if err != nil {
		sendmail = "/usr/sbin/sendmail"
	}
	if _, err := os.Stat(sendmail); err != nil {
		harness.Missing(t, "sendmail: %v", err)
	}
	bin, err := os.MkdirTemp("", "pfe19b-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bin, "filter.sh")
	// An unprivileged sendmail (postdrop, set-group-id) submits only to
	// the instances that the system's main.cf lists: this instance's
	// commands are the system's, but its postdrop is a plain copy, and
	// its maildrop is open to all.
	cmds, _ := filepath.Glob("/usr/sbin/post*")
	for _, c := range cmds {
		if filepath.Base(c) == "postdrop" {
			b, err := os.ReadFile(c)
			if err == nil {
				err = os.WriteFile(filepath.Join(bin, "postdrop"), b, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
		} else if err := os.Symlink(c, filepath.Join(bin, filepath.Base(c))); err != nil {
			t.Fatal(err)
		}
	}
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	pf := harness.StartPostfix(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF: []string{
			"smtpd_authorized_xclient_hosts = 127.0.0.0/8",
			"relay_domains = gmail.test",
			"command_directory = " + bin,
			"smtpd_recipient_restrictions = check_recipient_access inline:{ { spam@gmail.test = FILTER filter:dummy } }, permit_mynetworks, reject_unauth_destination",
		},
		MasterCF: []string{
			"filter unix - n n - 10 pipe",
			"  flags=Rq user=" + filterUser.Username + " argv=" + script + " -f ${sender} -- ${recipient}",
		},
	})
	if err := os.Chmod(filepath.Join(filepath.Dir(pf.ConfigDir()), "spool", "maildrop"), 0o1733); err != nil {
		t.Fatal(err)
	}
	// FILTER_README's script, without the inspection.
	body := "#!/bin/sh\nMAIL_CONFIG=" + pf.ConfigDir() + " exec " + sendmail + " -G -i \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	// The spam's Message-ID is the one of the administrator's mail.
	hostileSendData(t, pf.Addr(), "203.0.113.91", "mx.filtered.test", []string{
		"MAIL FROM:<bob@filtered.test>", "RCPT TO:<spam@gmail.test>"},
		"Subject: spam\r\nMessage-Id: <same@relay.test>\r\n\r\nbuy\r\n")
	compWaitLog(t, pf, `status=sent \(delivered via filter service`, 30*time.Second)
	// pickup's FIFO is not open to all: a queue run (postqueue -f)
	// wakes it.
	compWaitRetries(t, pf, `postfix/pickup\[\d+\]: \w+: uid=`+filterUser.Uid+` from=<bob@filtered\.test>`, 1, 30*time.Second)
	cmd := exec.Command(sendmail, "-C", pf.ConfigDir(), "-f", "alice@relay.test", "spam@gmail.test")
	cmd.Stdin = strings.NewReader("Subject: local\nMessage-Id: <same@relay.test>\n\nhello\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	compWaitCount(t, pf, `to=<spam@gmail\.test>, relay=\S+\[127\.0\.0\.1\]\S*, .*status=bounced`, 2, 30*time.Second)

	dir := t.TempDir()
	welcome := filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(welcome, []byte("127.0.0.0/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, named := range []bool{false, true} {
		run := filepath.Join(dir, map[bool]string{false: "auto", true: "named"}[named])
		if err := os.Mkdir(run, 0o755); err != nil {
			t.Fatal(err)
		}
		args := []string{"--trusted-upstream", "127.0.0.1"}
		if named {
			args = append(args, "--filter-user", filterUser.Username)
		}
		banLog := filepath.Join(run, "bans.log")
		out := review11Enforcer(t, pf, run, filepath.Join(run, "sender_access"), welcome, banLog, args...)
		compWantLines(t, out, []string{`^\S+ report queue=\w+ client="" client_name="" from=<bob@filtered\.test> to=<spam@gmail\.test> .*why="the client is unknown" reinjected=`})
		local := `why="the client is unknown" reinjected="submitted locally within`
		if named {
			local = `why="no backup mailbox`
		}
		compWantLines(t, out, []string{`^\S+ report queue=\w+ client="" client_name="" from=<alice@relay\.test> .*` + local})
		if strings.Contains(out, " ban ") || strings.Contains(out, " encapsulate ") {
			t.Errorf("named %v: the filter's copy was sanctioned or re-sent:\n%s", named, out)
		}
		if b, _ := os.ReadFile(banLog); len(b) > 0 {
			t.Errorf("named %v: ban lines:\n%s", named, b)
		}
	}
}
