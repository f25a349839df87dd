package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestS24EnforcerSighupDuringReplace: `postfix-enforcer -r` waits up to 15
// s for the instance it replaces; a unit's ExecReload (SIGHUP) in that
// wait ended the new instance, leaving no enforcer at all once the old one
// had gone.
func TestS24EnforcerSighupDuringReplace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logFile := writeFile(t, dir, "mail.log", "", 0o644)
	wl := writeFile(t, dir, "welcomelist", "# nobody is exempt\n", 0o644)
	args := append([]string{"postfix-enforcer"}, enforcerArgs(logFile, filepath.Join(dir, "state"),
		filepath.Join(dir, "sender_access"), wl, filepath.Join(dir, "bans.log"), "127.0.0.1:9")...)
	old := harness.Start(t, harness.Binary(t), args...)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(old.Stderr(), "postfix-enforcer started") }) {
		t.Fatalf("not started:\n%s", old.Stderr())
	}
	// Stopped, the old instance takes the replacement's SIGTERM only when
	// continued: the replacement waits for its lock meanwhile.
	old.Signal(syscall.SIGSTOP)
	repl := harness.Start(t, harness.Binary(t), append(args, "-r")...)
	time.Sleep(time.Second)
	repl.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	old.Signal(syscall.SIGCONT)
	if code, err := old.Wait(15 * time.Second); err != nil {
		t.Fatalf("the old instance did not stop: %v", err)
	} else if code != 0 {
		t.Logf("old instance exit %d", code)
	}
	if !waitFor(15*time.Second, func() bool { return strings.Contains(repl.Stderr(), "postfix-enforcer started") }) {
		code, err := repl.Wait(time.Second)
		t.Fatalf("the replacement did not start after a SIGHUP in its wait (exit %d, %v):\n%s", code, err, repl.Stderr())
	}
	repl.Signal(syscall.SIGTERM)
	if code, err := repl.Wait(15 * time.Second); err != nil || code != 0 {
		t.Errorf("replacement: exit %d, %v, want 0 on SIGTERM:\n%s", code, err, repl.Stderr())
	}
}

// TestS24BadTableSaidOncePerVersion: a table with a bad line was logged at
// every five-second look for changed files, for as long as it stayed bad
// (720 error lines an hour for one typo), while the rules file's error was
// said once. Now each bad version is said once, again on each SIGHUP, and
// again when mended and broken once more.
func TestS24BadTableSaidOncePerVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	access := writeFile(t, dir, "sender_access", "old.example REJECT old\n", 0o644)
	transport := writeFile(t, dir, "transport", "example.net smtp:[127.0.0.1]:9\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\nsender_restrictions = [\"check_sender_access hash:%s\"]\n[routing]\ntransport_maps = [\"hash:%s\"]\n", access, transport))
	said := func(what string) int { return strings.Count(r.stderr(), what) }
	const tableErr, routeErr = "table not reloaded", "routing tables not reloaded"
	writeFile(t, dir, "sender_access", "old.example REJECT old\nno-value-here\n", 0o644)
	writeFile(t, dir, "transport", "example.net smtp:[127.0.0.1]:9\nno-value-here\n", 0o644)
	if !waitFor(8*time.Second, func() bool { return said(tableErr) > 0 && said(routeErr) > 0 }) {
		t.Fatalf("a bad edit was not logged:\n%s", r.stderr())
	}
	time.Sleep(11 * time.Second) // two more looks for changed files
	if a, b := said(tableErr), said(routeErr); a != 1 || b != 1 {
		t.Errorf("after 11 s more of the same bad versions: %q said %d times, %q %d; want once each", tableErr, a, routeErr, b)
	}
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(5*time.Second, func() bool { return said(tableErr) == 2 && said(routeErr) == 2 }) {
		t.Errorf("SIGHUP did not say the bad versions again: %d, %d", said(tableErr), said(routeErr))
	}
	writeFile(t, dir, "sender_access", "old.example REJECT old\n", 0o644)
	if !waitFor(8*time.Second, func() bool {
		return strings.Count(r.stderr(), "msg=\"table reloaded") > 0 || said(tableErr) == 2 && time.Now().IsZero()
	}) {
		time.Sleep(6 * time.Second)
	}
	writeFile(t, dir, "sender_access", "old.example REJECT old\nno-value-here\n", 0o644)
	if !waitFor(12*time.Second, func() bool { return said(tableErr) == 3 }) {
		t.Errorf("broken again after a mend, the table was said %d times in all; want 3:\n%s", said(tableErr), r.stderr())
	}
}

// TestS24FilterOutsideUsersOnly: docs/filters.md's version of
// FILTER_README's "filtering mail from outside users only", a client
// access table whose result is FILTER, works as written: mail from the
// clients it names goes through the content filter (a private Postfix
// here), mail from the others straight on.
func TestS24FilterOutsideUsersOnly(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	clients := writeFile(t, t.TempDir(), "filter_clients", fmt.Sprintf(
		"# everyone but the local networks (here: all but 127.0.0.1)\n127.0.0.1/32      OK\n192.168.0.0/16    OK\n0.0.0.0/0         FILTER scan:127.0.0.1:%s\n::/0              FILTER scan:127.0.0.1:%[1]s\n",
		portOf(filter.Addr())), 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[policy]\nmynetworks = [\"127.0.0.0/8\"]\nclient_restrictions = [\"check_client_access cidr:%s\"]\n", clients))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject),
		"--spool-dir", t.TempDir())
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		if tx, err := sendFrom(r.addr(), ip, "alice@example.org", []string{"bob@example.net"}, message("from "+ip)); err != nil || tx.Final.code() != 250 {
			t.Fatalf("from %s: %+v, %v", ip, tx, err)
		}
	}
	for _, tx := range sink.WaitTransactions(t, 2, 30*time.Second) {
		data := string(tx.Data)
		viaFilter, outside := strings.Contains(data, "(Postfix)"), strings.Contains(data, "Subject: from 127.0.0.2")
		if viaFilter != outside {
			t.Errorf("message %q went through the filter: %v; want %v", head(data), viaFilter, outside)
		}
	}
}
