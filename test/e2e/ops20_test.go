package e2e

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps20POP3FailedLoginsForFail2ban: docs/auth.md says that every
// failed login, and every login refused by [auth] failure_limit, is a
// mail-log reject line with stage=auth for the shipped fail2ban filter;
// POP3 logins count in the same limit. A POP3 guesser's failures were only
// diagnostic lines ("pop3: authentication failed"), so the relaykeeper-auth
// jail never saw them and the guesser kept its failure_limit tries every
// failure_window for good. Logins with user names that look like
// addresses must not give fail2ban anything but the client's own address.
func TestOps20POP3FailedLoginsForFail2ban(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secrets := writeFile(t, dir, "pop.auth", "server plain alice s3cret\n", 0o600)
	cfg := writeFile(t, dir, "relaykeeper.toml", "[auth]\nfailure_limit = 2\nfailure_window = \"10m\"\n", 0o644)
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--config", cfg, "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort),
		"--pop-auth", secrets, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", popPort)
	harness.WaitPort(t, addr, 5*time.Second)

	pop := func(fromIP string, lines ...string) []string { return popSession(t, addr, fromIP, lines...) }
	plain := func(user, pass string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
	}
	got := pop("127.0.0.41", "USER rhost=10.9.8.7", "PASS wrong", plain("10.9.8.6", "wrong"), plain("alice", "s3cret"))
	want := []string{"+OK send PASS", "-ERR [AUTH] authentication failed", "-ERR [AUTH] authentication failed",
		"-ERR [SYS/TEMP] too many failed logins from your address; try again later"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("POP3 replies %q; want %q", got, want)
	}
	if got := pop("127.0.0.42", "USER alice", "PASS s3cret", "QUIT"); len(got) != 3 || !strings.HasPrefix(got[1], "+OK") {
		t.Fatalf("the right password from another address: %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return len(authRejects(r, "127.0.0.41")) == 3 }) {
		t.Fatalf("stage=auth reject lines for 127.0.0.41: %v; want 3 (two failed logins, one refused)",
			fields(authRejects(r, "127.0.0.41")))
	}
	checkAuthFilter(t, r.stderr(), []string{"127.0.0.41", "127.0.0.41", "127.0.0.41"})
}

// TestOps20StopLetsFiltersFinish stops the relay as systemd stops the
// shipped unit (etc/relaykeeper.service): with its KillMode, SIGTERM goes
// to the main process only ("mixed", "process") or to every process of
// the service at once (the default, "control-group"). The unit and
// docs/operations.md promise that SIGTERM lets sessions under way finish;
// with the default KillMode a --filter program running for a client's
// message was killed beside the relay, and the client heard 451 instead
// of 250 at every stop and restart (and a --client-filter's delivery was
// cut the same way).
func TestOps20StopLetsFiltersFinish(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	killMode := "control-group"
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "KillMode="); ok {
			killMode = strings.TrimSpace(v)
		}
	}
	filter := script(t, "slow-filter", "sleep 2\nexit 0\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", filter, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	main := r.current()
	sent := make(chan transaction, 1)
	go func() {
		tx, _ := sendMail(r.addr(), "a@example.org", []string{"b@example.net"}, message("stop under way"))
		sent <- tx
	}()
	var kids []int
	if !waitFor(10*time.Second, func() bool { kids = descendants(main.PID()); return len(kids) > 0 }) {
		t.Fatal("the filter never ran")
	}
	// systemctl stop, as the unit's KillMode has it.
	main.Signal(syscall.SIGTERM)
	if killMode == "control-group" {
		for _, pid := range kids {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	var tx transaction
	select {
	case tx = <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("no reply to the message's end within 20 s of the stop")
	}
	if tx.Final.code() != 250 {
		t.Errorf("KillMode=%s: the message in the filter when the relay was stopped got %q; want 250 (the session finishes)", killMode, tx.Final)
	}
	if code, err := main.Wait(15 * time.Second); err != nil || code != 0 {
		t.Errorf("relaykeeper after the stop: exit %d, %v; want 0", code, err)
	}
}

// descendants are the processes under pid, children first.
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

// TestOps20SystemdReady: the shipped unit is Type=notify, so "systemctl
// start relaykeeper" (and "enable --now") returns once the relay listens,
// and fails when it does not start: with Type=simple it returned success at
// once, even for a configuration the relay then refused with exit status 2,
// and units ordered after relaykeeper started before its ports were open.
// The relay sends READY=1 to $NOTIFY_SOCKET once its listeners are open,
// and nothing when it refuses its configuration.
func TestOps20SystemdReady(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nType=notify\n") {
		t.Errorf("etc/relaykeeper.service is not Type=notify")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	read := func(timeout time.Duration) string {
		ln.SetReadDeadline(time.Now().Add(timeout))
		b := make([]byte, 4096)
		n, err := ln.Read(b)
		if err != nil {
			return ""
		}
		return string(b[:n])
	}
	env := harness.ProcOptions{Env: []string{"NOTIFY_SOCKET=" + sock}}

	// A configuration the relay refuses: no READY=1, exit status 2.
	bad := harness.StartWith(t, env, harness.Binary(t), "--as-server", "--port", "not-a-port", "--spool-dir", t.TempDir())
	if code, err := bad.Wait(15 * time.Second); code != 2 || err != nil {
		t.Errorf("a bad --port: exit %d, %v; want 2", code, err)
	}
	if got := read(100 * time.Millisecond); got != "" {
		t.Errorf("a relay that refused its configuration told systemd %q", got)
	}

	port := harness.FreePort(t)
	p := harness.StartWith(t, env, harness.Binary(t), "--as-server", "--port", fmt.Sprint(port),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	got := read(15 * time.Second)
	if !strings.Contains("\n"+got+"\n", "\nREADY=1\n") {
		t.Fatalf("the relay told systemd %q; want READY=1", got)
	}
	// Listening by then.
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		t.Fatalf("READY=1 came before the SMTP port listened: %v", err)
	}
	c.Close()
	// A reload is told as one (systemctl shows "reloading"), and its end
	// with READY=1; a stop as STOPPING=1 ("deactivating"), so that a stop
	// that takes the shutdown grace is not taken for a hang (session 25).
	p.Signal(syscall.SIGHUP)
	if got := read(15 * time.Second); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("after SIGHUP the relay told systemd %q; want RELOADING=1", got)
	}
	if got := read(15 * time.Second); !strings.HasPrefix(got, "READY=1\n") {
		t.Errorf("after a reload the relay told systemd %q; want READY=1", got)
	}
	p.Signal(syscall.SIGTERM)
	if got := read(15 * time.Second); got != "STOPPING=1\n" {
		t.Errorf("after SIGTERM the relay told systemd %q; want STOPPING=1", got)
	}
	if code, err := p.Wait(15 * time.Second); code != 0 || err != nil {
		t.Errorf("after SIGTERM: exit %d, %v; want 0", code, err)
	}
}

// TestOps20ReloadTableSecrets: docs/tables.md's table of what a reload
// covers said that the --server-auth, --client-auth and --pop-auth secrets
// files need a restart, while docs/auth.md, docs/pop3.md and
// docs/operations.md said, rightly, that SIGHUP re-reads them (and that
// they are re-read when they change): an administrator who rotated a
// password by the table restarted the relay for nothing, cutting every
// session. The relay re-reads --pop-auth on SIGHUP, and the table's row
// for the secrets files says so.
func TestOps20ReloadTableSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secrets := writeFile(t, dir, "pop.auth", "server plain alice old-pw\n", 0o600)
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort),
		"--pop-auth", secrets, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", popPort)
	harness.WaitPort(t, addr, 5*time.Second)
	writeFile(t, dir, "pop.auth", "server plain alice new-pw\n", 0o600)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(10*time.Second, func() bool {
		got := popSession(t, addr, "127.0.0.1", "USER alice", "PASS new-pw")
		return len(got) == 2 && strings.HasPrefix(got[1], "+OK")
	}) {
		t.Fatal("the password in the --pop-auth file after SIGHUP does not log in")
	}

	doc, err := os.ReadFile("../../docs/tables.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(row, "|") || !strings.Contains(row, "--pop-auth") {
			continue
		}
		cells := strings.Split(strings.Trim(row, "| "), "|")
		if len(cells) != 3 || !strings.HasPrefix(strings.TrimSpace(cells[2]), "yes") {
			t.Errorf("docs/tables.md says of the secrets files on SIGHUP: %q; the relay re-reads them", row)
		}
		return
	}
	t.Error("docs/tables.md's reload table has no row for the --pop-auth secrets file")
}

// popSession connects to the POP3 server at addr from fromIP, sends the
// lines and returns the first line of each reply, up to the first that
// does not come.
func popSession(t *testing.T, addr, fromIP string, lines ...string) []string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var replies []string
	for _, l := range lines {
		fmt.Fprintf(c, "%s\r\n", l)
		reply, err := br.ReadString('\n')
		if err != nil {
			break
		}
		replies = append(replies, strings.TrimSpace(reply))
	}
	return replies
}
