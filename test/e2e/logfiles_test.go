package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// smtpTouch opens an SMTP session and quits, which the mail log records.
func smtpTouch(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	r.ReadString('\n')
}

// waitForText polls until file contains want, for at most 10 s.
func waitForText(t *testing.T, file, want string) string {
	t.Helper()
	var data []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		data, _ = os.ReadFile(file)
		if strings.Contains(string(data), want) {
			return string(data)
		}
	}
	t.Fatalf("%s does not say %q after 10s:\n%s", filepath.Base(file), want, data)
	return ""
}

// TestLogFilesReopenOnSIGHUP does what logrotate without copytruncate
// does: rename --log-file and the mail log, send SIGHUP; the relay's new
// lines go to new files under the old names, and the renamed files keep
// what was written before. The diagnostic log is --log-format json: every
// line is one JSON object.
func TestLogFilesReopenOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	logFile, mailLog := filepath.Join(dir, "relaykeeper.log"), filepath.Join(dir, "mail.log")
	conf := filepath.Join(dir, "relaykeeper.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[log]\nmail_log = %q\n", mailLog)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	p := harness.Start(t, harness.Binary(t), "--config", conf, "--as-server", "--log", "--log-format", "json",
		"--log-file", logFile, "--interface", addr, "--spool-dir", filepath.Join(dir, "spool"))
	harness.WaitPort(t, addr, 10*time.Second)
	smtpTouch(t, addr)
	waitForText(t, mailLog, "connect")
	waitForText(t, logFile, `"msg":"relaykeeper started"`)

	for _, f := range []string{logFile, mailLog} {
		if err := os.Rename(f, f+".1"); err != nil {
			t.Fatal(err)
		}
	}
	p.Signal(syscall.SIGHUP)
	waitForText(t, logFile, `"msg":"SIGHUP`)
	smtpTouch(t, addr)
	waitForText(t, mailLog, "connect")

	old, _ := os.ReadFile(logFile + ".1")
	if strings.Contains(string(old), `"msg":"SIGHUP`) {
		t.Errorf("the renamed log got the line written after SIGHUP:\n%s", old)
	}
	if !strings.Contains(string(old), "relaykeeper started") {
		t.Errorf("the renamed log lost its lines:\n%s", old)
	}
	oldMail, _ := os.ReadFile(mailLog + ".1")
	if n := strings.Count(string(oldMail), " connect "); n != 1 {
		t.Errorf("the renamed mail log has %d connect lines; want 1:\n%s", n, oldMail)
	}
	for _, f := range []string{logFile, logFile + ".1"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["level"] == nil || obj["time"] == nil {
				t.Errorf("%s: line %q is not a slog JSON record (%v)", filepath.Base(f), line, err)
			}
		}
	}
}
