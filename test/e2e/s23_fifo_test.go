package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestS23NamedPipeTableDoesNotWedgeReloads: a table file replaced by a named
// pipe (a secrets manager's, a shell's process substitution) had the reload
// open it and wait for a writer for good: that reload and every later one
// (the table timer's, SIGHUP's) were stuck, so no edit of any table was in
// force again until a restart. It is refused now, naming the pipe, and the
// next edit is read.
func TestS23NamedPipeTableDoesNotWedgeReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	access := writeFile(t, dir, "access", "10.9.9.9 REJECT\n", 0o644)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--config", writeConfig(t, "[policy]\nclient_restrictions = [\"check_client_access texthash:"+access+"\"]\n"))
	if err := os.Remove(access); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(access, 0o644); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(r.stderr(), "named pipe") }) {
		t.Fatalf("a table replaced by a named pipe and SIGHUP: the log does not say so:\n%s", r.stderr())
	}
	os.Remove(access)
	writeFile(t, dir, "access", "10.9.9.9 REJECT\n127.0.0.41 REJECT\n", 0o644)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(15*time.Second, func() bool {
		c, greet, err := dialFrom(r.addr(), "127.0.0.41")
		if err != nil {
			return false
		}
		defer c.Close()
		if greet.code() != 220 {
			return false
		}
		rep, err := c.cmd("EHLO client.e2e.test")
		if err != nil || rep.code() != 250 {
			return false
		}
		rep, _ = c.cmd("MAIL FROM:<a@example.org>")
		if rep.code() == 250 {
			rep, _ = c.cmd("RCPT TO:<b@example.org>")
		}
		return rep.code() == 554
	}) {
		t.Errorf("the table edited after the named pipe is not in force:\n%s", r.stderr())
	}
}
