package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud2PidFileUnwritableStopsStart: a --pid-file that cannot be written
// (here, two directory levels are missing: E-MailRelay makes one) stops
// the start with a message naming the switch, as E-MailRelay's does.
// relaykeeper logged "cannot write pid file" and ran on without it, so an
// init script's stop and status found nothing to signal.
func TestAud2PidFileUnwritableStopsStart(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "missing", "run", "relay.pid")
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--interface", "127.0.0.1",
		"--port", strconv.Itoa(harness.FreePort(t)), "--spool-dir", t.TempDir(), "--pid-file", pidFile)
	if code != 2 || !strings.Contains(errOut, "--pid-file: "+pidFile) {
		t.Fatalf("exit %d, stderr %q; want exit 2 and a message naming --pid-file and %s", code, errOut, pidFile)
	}
}

// TestAud2PromptTimeoutGoesAhead: E-MailRelay's --prompt-timeout waits
// that long for the smarthost's greeting, "then the SMTP dialog goes ahead
// without it". relaykeeper gave up instead ("upstream greeting failed: i/o
// timeout"), so an upstream that greets late, or only once spoken to, never
// got mail. Now EHLO goes out after --prompt-timeout, and a late greeting
// is skipped before EHLO's reply.
func TestAud2PromptTimeoutGoesAhead(t *testing.T) {
	t.Parallel()
	late := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{Delay: 3 * time.Second}})
	for name, upstream := range map[string]string{"greets late": late.Addr(), "never greets": silentGreeter(t)} {
		t.Run(name, func(t *testing.T) {
			spool := t.TempDir()
			spoolMessages(t, spool, 1)
			code, out, p := runClient(t, "--as-client", upstream, "--spool-dir", spool, "--prompt-timeout", "1")
			if line := summary(t, out); code != 0 || count(line, "delivered") != 1 {
				t.Errorf("--as-client --prompt-timeout 1 to an upstream that %s: exit %d, %q; want exit 0, 1 delivered\n%s", name, code, line, p.Stderr())
			}
		})
	}
	if n := len(late.Transactions()); n != 1 {
		t.Errorf("the late greeter got %d messages; want 1", n)
	}
}

// silentGreeter is an SMTP server on loopback that sends no greeting and
// answers each command once spoken to; it accepts every message.
func silentGreeter(t *testing.T) string {
	t.Helper()
	return harness.ServeTCP(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		r, data := bufio.NewReader(c), false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			rep := "250 Ok"
			switch {
			case data && cmd == ".":
				data, rep = false, "250 2.0.0 Ok"
			case data:
				continue
			case strings.HasPrefix(cmd, "EHLO"):
				rep = "250-silent.test\r\n250 8BITMIME"
			case cmd == "DATA":
				data, rep = true, "354 go ahead"
			case cmd == "QUIT":
				fmt.Fprint(c, "221 bye\r\n")
				return
			}
			fmt.Fprint(c, rep+"\r\n")
		}
	})
}

// TestAud2VerboseTracesDialogues: E-MailRelay's user guide debugs a
// smarthost by driving SMTP by hand and then comparing "the E-MailRelay
// --verbose log output ... with what the program does". relaykeeper's
// --verbose logged nothing of either conversation. Now it traces the
// commands and replies of every client and upstream, as [log] debug_peers
// does, but leaves the message text out, as E-MailRelay's --verbose does.
func TestAud2VerboseTracesDialogues(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--verbose", "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir(), "--forward-to", up.Addr(), "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("secret-subject-aud2"))
	up.WaitTransactions(t, 1, 10*time.Second)
	for _, want := range []string{
		`dir=< line="RCPT TO:<bob@example.net>"`,                              // the client's
		`debug_peer=` + up.Addr() + ` dir=> line="RCPT TO:<bob@example.net>"`, // the relay's, upstream
		`line="(message content hidden)"`,
	} {
		if !waitFor(5*time.Second, func() bool { return strings.Contains(r.stderr(), want) }) {
			t.Errorf("--verbose log lacks %s; log:\n%s", want, r.stderr())
		}
	}
	// The mail log's accept line names the Message-ID, as Postfix's
	// cleanup line does (ops28); the Subject and the body stay out.
	if strings.Contains(strings.ReplaceAll(r.stderr(), "message-id=<secret-subject-aud2@e2e.test>", ""), "secret-subject-aud2") {
		t.Errorf("--verbose logged the message text; log:\n%s", r.stderr())
	}
}

// TestAud2CloseStderrLogsToSyslog: the user guide's "emailrelay --pop
// --no-smtp --log --close-stderr" logs to the system log (LOG_MAIL) with
// standard error closed once started, and --syslog sends the log there.
// relaykeeper accepted --close-stderr, --syslog and --no-syslog and did
// nothing with them: the log stayed on standard error and never reached
// syslog. The relay runs in a mount namespace whose /run is a directory of
// the test's, holding the "log" socket that Go's log/syslog looks for
// (/dev/log, then /var/run/syslog and /var/run/log).
func TestAud2CloseStderrLogsToSyslog(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		needFor(t, "a private /run for the syslog socket", errors.New("needs root"))
	}
	for _, tool := range []string{"unshare", "mount"} {
		_, err := exec.LookPath(tool)
		needFor(t, "a private /run for the syslog socket", err)
	}
	run := t.TempDir()
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(run, "log"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var logged strings.Builder
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			logged.Write(buf[:n])
			mu.Unlock()
		}
	}()
	syslogged := func() string { mu.Lock(); defer mu.Unlock(); return logged.String() }
	r := startRelayWith(t, "127.0.0.1", "unshare", "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount --bind '%s' /run && exec "$0" "$@"`, run), harness.Binary(t),
		"--as-server", "--log", "--close-stderr", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("to syslog"))
	accept := "accept id=" + queuedID(t, tx.Final)
	if !waitFor(10*time.Second, func() bool { return strings.Contains(syslogged(), accept) }) {
		t.Fatalf("the system log lacks %q; it has:\n%s\nstderr:\n%s", accept, syslogged(), r.stderr())
	}
	// <22>: LOG_MAIL (2) * 8 + LOG_INFO (6), tagged as the relay.
	if !strings.Contains(syslogged(), "<22>") || !strings.Contains(syslogged(), "relaykeeper[") {
		t.Errorf("system log lines are not mail.info from relaykeeper:\n%s", syslogged())
	}
	if strings.Contains(r.stderr(), accept) {
		t.Errorf("--close-stderr: standard error still has the log after start-up:\n%s", r.stderr())
	}
	r2 := startRelayWith(t, "127.0.0.1", "unshare", "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount --bind '%s' /run && exec "$0" "$@"`, run), harness.Binary(t),
		"--as-server", "--syslog=local3", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	tx = mustSend(t, r2.addr(), "alice@example.org", []string{"bob@example.net"}, message("to local3"))
	accept = "accept id=" + queuedID(t, tx.Final)
	// <158>: LOG_LOCAL3 (19) * 8 + LOG_INFO (6); stderr keeps it too.
	if !waitFor(10*time.Second, func() bool { return strings.Contains(syslogged(), "<158>") && strings.Contains(r2.stderr(), accept) }) {
		t.Errorf("--syslog=local3: no local3 line in the system log or no log on stderr; system log:\n%s\nstderr:\n%s", syslogged(), r2.stderr())
	}
}

// TestAud2ClientTLSServerNameNeedsTLS: --client-tls-server-name without
// any client TLS switch names a server for a TLS handshake that never
// happens. relaykeeper took it and ignored it (its sibling
// --client-tls-verify was refused); now the start is refused, naming the
// switches that would use it.
func TestAud2ClientTLSServerNameNeedsTLS(t *testing.T) {
	t.Parallel()
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--interface", "127.0.0.1",
		"--port", strconv.Itoa(harness.FreePort(t)), "--spool-dir", t.TempDir(),
		"--forward-to", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--client-tls-server-name", "smtp.example.net")
	if code != 2 || !strings.Contains(errOut, "without --client-tls") {
		t.Fatalf("exit %d, stderr %q; want exit 2 and a message that --client-tls is missing", code, errOut)
	}
}

// TestAud2CloseStderrAfterWhereToLook: on a terminal, --close-stderr closes
// standard error only after the start-up text that says where the relay
// listens and logs; it closed it first, so the terminal showed nothing.
func TestAud2CloseStderrAfterWhereToLook(t *testing.T) {
	t.Parallel()
	script, err := exec.LookPath("script")
	needFor(t, "script(1), to give the relay a terminal", err)
	logFile := filepath.Join(t.TempDir(), "relay.log")
	cmdline := fmt.Sprintf("timeout -s TERM 3 '%s' --as-server --interface 127.0.0.1 --port %d --spool-dir '%s' --close-stderr --log-file '%s'",
		harness.Binary(t), harness.FreePort(t), t.TempDir(), logFile)
	out, _, _ := runBinary(t, script, "", "-qec", cmdline, "/dev/null")
	if !strings.Contains(out, "is running") || !strings.Contains(out, logFile) {
		t.Errorf("on a terminal with --close-stderr, the start-up text is missing:\n%q", out)
	}
}
