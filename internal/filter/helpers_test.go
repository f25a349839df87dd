package filter

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Compile-time checks that the filters are what Parse hands out.
var (
	_ Filter = (*program)(nil)
	_ Filter = (*exitFilter)(nil)
	_ Filter = (*msgID)(nil)
	_ Filter = (*spamd)(nil)
	_ Filter = (*netFilter)(nil)
	_ Filter = (*pipe)(nil)
	_ Filter = (*chain)(nil)
)

const testContent = "Received: from client.example by relay.example; Sun, 22 Nov 2026 03:00:00 +0000\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: hello\r\n" +
	"\r\n" +
	"Hello Bob.\r\n"

// script writes an executable shell script into a fresh directory and
// returns its path.
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// message writes a message into a fresh spool-like directory, as the
// server has it while a --filter runs, and returns its two paths.
func message(t *testing.T, content string) (contentPath, envelopePath string) {
	t.Helper()
	dir := t.TempDir()
	contentPath = filepath.Join(dir, "6B0252D2F906FE64.content")
	envelopePath = filepath.Join(dir, "6B0252D2F906FE64.envelope.new")
	env := &spool.Envelope{
		ID:   "6B0252D2F906FE64",
		From: "alice@example.com",
		Recipients: []spool.Recipient{
			{Addr: "bob@example.net", Status: spool.Pending},
			{Addr: "carol@example.org", Status: spool.Pending},
			{Addr: "dave@example.com", Status: spool.Sent},
		},
		BodyType: "8bit",
		Client:   "127.0.0.1:49068",
		Arrival:  time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC),
	}
	if err := os.WriteFile(contentPath, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envelopePath, env.Marshal(), 0o640); err != nil {
		t.Fatal(err)
	}
	return contentPath, envelopePath
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustParse(t *testing.T, spec string, side Side, timeout time.Duration) Filter {
	t.Helper()
	f, err := Parse(spec, side, timeout)
	if err != nil {
		t.Fatalf("Parse(%q): %v", spec, err)
	}
	return f
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitGone waits up to 5 s for pid to end.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
