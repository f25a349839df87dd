package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// The set-up the companion tests share: a private Postfix that takes mail
// for gmail.test from XCLIENT clients (so that it logs the address each
// one says it has) and relays it to a fake Gmail, the backup server its
// always_bcc copies go to, mirrored to an mbox, and "relaykeeper
// postfix-enforcer --once" run over Postfix's log.

// companionPostfix starts a private Postfix that takes mail for
// gmail.test from XCLIENT clients and relays it to the fake Gmail at
// gmailAddr; mainCF adds main.cf lines (or replaces the two it sets).
func companionPostfix(t *testing.T, gmailAddr string, mainCF ...string) *harness.Postfix {
	t.Helper()
	return companionPostfixWith(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(gmailAddr), MainCF: mainCF})
}

// companionPostfixWith is companionPostfix with opts: its relayhost, its
// main.cf lines after the two that take XCLIENT clients' mail for
// gmail.test, and the rest as given.
func companionPostfixWith(t *testing.T, opts harness.PostfixOptions) *harness.Postfix {
	t.Helper()
	opts.MainCF = append([]string{"smtpd_authorized_xclient_hosts = 127.0.0.0/8", "relay_domains = gmail.test"}, opts.MainCF...)
	return harness.StartPostfix(t, opts)
}

// hostileGmailPostfix starts a fake Gmail that answers as
// hostileGmailDecide and a companionPostfix relaying to it.
func hostileGmailPostfix(t *testing.T, mainCF ...string) (*harness.Postfix, *harness.FakeSMTP) {
	t.Helper()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: hostileGmailDecide})
	return companionPostfix(t, gmail.Addr(), mainCF...), gmail
}

// startCompanionBackup starts the backup server (a FakeSMTP for
// backup.test) and mirrors what it takes to dir/backup.mbox, as local(8)
// would, until the test ends. It returns the server, the mbox and the
// main.cf lines that make Postfix send an always_bcc copy of every
// message to it.
func startCompanionBackup(t *testing.T, dir string) (backup *harness.FakeSMTP, mbox string, mainCF []string) {
	t.Helper()
	backup = harness.NewFakeSMTP(t, harness.Script{Hostname: "backup.test"})
	mbox = filepath.Join(dir, "backup.mbox")
	t.Cleanup(compMirrorBackup(backup, mbox))
	return backup, mbox, []string{
		"always_bcc = backup@backup.test",
		"transport_maps = inline:{backup.test=smtp:" + harness.RelayhostFor(backup.Addr()) + "}",
	}
}

// companionEnforcer writes welcome to dir/welcomelist and runs
// review11Enforcer with dir/sender_access and dir/bans.log.
func companionEnforcer(t *testing.T, pf *harness.Postfix, dir, welcome string, extra ...string) string {
	t.Helper()
	wl := writeFile(t, dir, "welcomelist", welcome, 0o644)
	return review11Enforcer(t, pf, dir, filepath.Join(dir, "sender_access"), wl, filepath.Join(dir, "bans.log"), extra...)
}

// review11Enforcer runs "postfix-enforcer --once" over pf's log, with its
// state in dir, and returns what it printed.
func review11Enforcer(t *testing.T, pf *harness.Postfix, dir, access, welcome, banLog string, extra ...string) string {
	t.Helper()
	return enforcerOnce(t, nil, append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access, welcome, banLog, pf.Addr()), extra...)...)
}

// enforcerArgs are postfix-enforcer's arguments for the mail log logFile,
// with the state file and tables given and no ban delay, sending as
// postmaster@relay.test through smtpAddr.
func enforcerArgs(logFile, state, access, welcome, banLog, smtpAddr string) []string {
	return []string{"--log", logFile, "--state", state,
		"--sender-access", access, "--welcomelist", welcome, "--ban-log", banLog, "--ban-delay", "0",
		"--smtp", smtpAddr, "--sender", "postmaster@relay.test"}
}

// enforcerOnce runs "relaykeeper postfix-enforcer --once" with args, env
// added to its environment, fails the test unless it exits 0, and
// returns what it printed.
func enforcerOnce(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p := harness.StartWith(t, harness.ProcOptions{Env: env}, harness.Binary(t), append([]string{"postfix-enforcer", "--once"}, args...)...)
	if code, err := p.Wait(60 * time.Second); code != 0 || err != nil {
		t.Fatalf("postfix-enforcer --once: exit %d, %v\nstdout:\n%s\nstderr:\n%s", code, err, p.Stdout(), p.Stderr())
	}
	t.Logf("postfix-enforcer --once:\n%s\nstderr:\n%s", p.Stdout(), p.Stderr())
	return p.Stdout()
}
