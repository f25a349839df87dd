package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestWalk21TypoSuggests: a mistyped switch or command is refused with exit
// status 2 and names what it was probably meant to be, as a mistyped key of
// the TOML file does: the relay's switches on the command line and in
// E-MailRelay's configuration file (with FILE:LINE), the subcommands, their
// switches and their commands.
func TestWalk21TypoSuggests(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	conf := writeFile(t, dir, "emailrelay.conf", "spool-dir "+spool+"\nforwrd-to smarthost:smtp\n", 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--forwrd-to", "x:25", "--check"}, "unknown switch --forwrd-to; did you mean --forward-to?"},
		{[]string{"--colse-stderr", "--check"}, "did you mean --close-stderr?"},
		{[]string{conf, "--check"}, conf + ":2: unknown switch --forwrd-to; did you mean --forward-to?"},
		{[]string{"queu"}, `unknown command "queu"; did you mean queue?`},
		{[]string{"queue", "list", "--spool-dri", spool}, "unknown switch --spool-dri; did you mean --spool-dir?"},
		{[]string{"queue", "lst", "--spool-dir", spool}, `unknown command "lst"; did you mean list?`},
		{[]string{"bans", "lst", "--spool-dir", spool}, `unknown command "lst"; did you mean list?`},
		{[]string{"bans", "list", "--jsn", "--spool-dir", spool}, "did you mean --json?"},
		{[]string{"passwd", "--plan"}, "did you mean --plain?"},
		{[]string{"postfix-enforcer", "--stat", filepath.Join(dir, "state")}, "did you mean --state?"},
	} {
		_, stderr, code := runBinary(t, bin, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("relaykeeper %s: exit %d, %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	// Nothing near: no guess, and no guess from one letter.
	for _, args := range [][]string{{"--frobnicate"}, {"-Z"}} {
		if _, stderr, code := runBinary(t, bin, "", args...); code != 2 || strings.Contains(stderr, "did you mean") {
			t.Errorf("relaykeeper %s: exit %d, %q; want exit 2 and no guess", args[0], code, stderr)
		}
	}
}

// TestWalk21SwitchValueIsASwitch: a switch whose value was left out, so
// that the next word is another switch ("--as-proxy --check"), is refused
// with exit status 2; it used to take "--check" as the smarthost's name and
// start the relay for real, listening, instead of checking the settings.
func TestWalk21SwitchValueIsASwitch(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	port := strconv.Itoa(harness.FreePort(t))
	common := []string{"--port", port, "--interface", "127.0.0.1", "--spool-dir", filepath.Join(dir, "spool")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--as-proxy", "--check"}, "--as-proxy needs a value, not the switch --check"},
		{[]string{"--as-server", "--admin-password-file", "--check"}, "--admin-password-file needs a value, not the switch --check"},
		{[]string{"--as-server", "--forward-to", "--log=true", "--check"}, "--forward-to needs a value, not the switch --log"},
	} {
		_, stderr, code := runBinary(t, bin, "", append(c.args, common...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("relaykeeper %s: exit %d, %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestWalk21ReadableSecretsWarned: docs/auth.md says a secrets file must be
// readable by relaykeeper only; one that every user may read (a smarthost's
// password in plain text, an account's) is named with its mode by --check
// and at start, and one that is not draws no warning.
func TestWalk21ReadableSecretsWarned(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	client := writeFile(t, dir, "client.auth", "client plain relay s3cret\n", 0o644)
	server := writeFile(t, dir, "server.auth", "server plain bob s3cret\n", 0o644)
	args := []string{"--check", "--as-server", "--forward-to", "127.0.0.1:25", "--spool-dir", filepath.Join(dir, "spool"),
		"--client-auth", client, "--server-auth", server}
	_, stderr, code := runBinary(t, bin, "", args...)
	for _, f := range []string{client, server} {
		if code != 0 || !strings.Contains(stderr, `a secrets file is readable by every user of this machine`) ||
			!strings.Contains(stderr, "file="+f+" mode=0644") {
			t.Errorf("--check with %s at 0644: exit %d, %q; want exit 0 and a warning naming it", f, code, stderr)
		}
	}
	for _, f := range []string{client, server} {
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, code := runBinary(t, bin, "", args...); code != 0 || strings.Contains(stderr, "readable by every user") {
		t.Errorf("--check with the files at 0600: exit %d, %q; want exit 0 and no warning", code, stderr)
	}
}

// TestWalk21CheckAdminOffLoopback: the start refuses an admin front end off
// loopback without a password (exit 2), so --check must too: it used to say
// "the configuration is good: the relay would start" for --admin-http
// 0.0.0.0:PORT and for --admin with --interface admin=0.0.0.0, and the
// systemd unit then failed at start. On loopback, or with a password file,
// it is good.
func TestWalk21CheckAdminOffLoopback(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	pw := writeFile(t, dir, "admin.pw", "s3cret\n", 0o600)
	spool := []string{"--as-server", "--spool-dir", filepath.Join(dir, "spool"), "--check"}
	walk21Run(t, bin, spool, []walk21Case{
		{[]string{"--admin-http", "0.0.0.0:8025"}, 2, "--admin-http: 0.0.0.0:8025: a password is required to listen on a non-loopback address"},
		{[]string{"--admin-http", ":8025"}, 2, "--admin-http: :8025: a password is required"},
		{[]string{"--admin", "10026", "--interface", "admin=0.0.0.0"}, 2, "--admin: 0.0.0.0:10026: a password is required"},
		{[]string{"--admin-http", "127.0.0.1:8025", "--admin", "10026"}, 0, "the configuration is good"},
		{[]string{"--admin-http", "[::1]:8025"}, 0, "the configuration is good"},
		{[]string{"--admin-http", "0.0.0.0:8025", "--admin-password-file", pw}, 0, "the configuration is good"},
	})
}

// TestWalk21CheckFrontendFiles: --check opens the files the POP3 server and
// the admin front ends read at start, as docs/operations.md says it opens
// every secrets file: a missing --pop-auth (or its default,
// /etc/relaykeeper.auth) and a missing or empty --admin-password-file used
// to pass --check ("the relay would start") and fail the start.
func TestWalk21CheckFrontendFiles(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	absent := filepath.Join(dir, "absent")
	empty := writeFile(t, dir, "empty.pw", "\n", 0o600)
	pop := writeFile(t, dir, "pop.auth", "server plain bob s3cret\n", 0o600)
	pw := writeFile(t, dir, "admin.pw", "s3cret\n", 0o600)
	spool := []string{"--as-server", "--spool-dir", filepath.Join(dir, "spool"), "--check"}
	walk21Run(t, bin, spool, []walk21Case{
		{[]string{"--pop", "--pop-auth", absent}, 2, "--pop-auth: auth: open " + absent},
		{[]string{"--admin-http", "127.0.0.1:8025", "--admin-password-file", absent}, 2, "--admin-password-file: open " + absent},
		{[]string{"--admin", "10026", "--admin-password-file", empty}, 2, "--admin-password-file: " + empty + ": the first line is empty"},
		{[]string{"--pop", "--pop-auth", pop, "--admin-http", "127.0.0.1:8025", "--admin-password-file", pw}, 0, "the configuration is good"},
	})
}

// walk21Case is a command line (before common) with its exit status and
// what its output must contain.
type walk21Case struct {
	args []string
	code int
	want string
}

// walk21Run runs each case's command line, followed by common, and checks
// its exit status and output.
func walk21Run(t *testing.T, bin string, common []string, cases []walk21Case) {
	t.Helper()
	for _, c := range cases {
		stdout, stderr, code := runBinary(t, bin, "", append(c.args, common...)...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("relaykeeper %s: exit %d, %q %q; want exit %d and %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.want)
		}
	}
}

// TestWalk21CheckListenerClash: two of the relay's own listeners given one
// address (the SMTP port as --pop-port, --admin or --admin-http) cannot both
// bind, so the start exits 2; --check used to say the relay would start.
func TestWalk21CheckListenerClash(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	pop := writeFile(t, dir, "pop.auth", "server plain bob s3cret\n", 0o600)
	port := strconv.Itoa(harness.FreePort(t))
	other := strconv.Itoa(harness.FreePort(t))
	common := []string{"--as-server", "--port", port, "--interface", "127.0.0.1", "--spool-dir", filepath.Join(dir, "spool"), "--check"}
	walk21Run(t, bin, common, []walk21Case{
		{[]string{"--pop", "--pop-auth", pop, "--pop-port", port}, 2, "--pop-port: 127.0.0.1:" + port + " is given for both smtp and pop"},
		{[]string{"--admin", port}, 2, "--admin: 127.0.0.1:" + port + " is given for both smtp and admin"},
		{[]string{"--admin-http", "127.0.0.1:" + port}, 2, "--admin-http: 127.0.0.1:" + port + " is given for both smtp and admin-http"},
		{[]string{"--admin", other, "--admin-http", "127.0.0.1:" + other}, 2, "is given for both admin and admin-http"},
		{[]string{"--pop", "--pop-auth", pop, "--pop-port", other, "--admin-http", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}, 0, "the configuration is good"},
	})
}
