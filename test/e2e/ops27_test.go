package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestOps27DashboardWithoutJavaScript opens the dashboard in Chromium
// with JavaScript off, as a text browser or a locked-down one sees it:
// the page showed a title and six tabs that did nothing. Now it shows the
// queue (the hostile sender as text), the bans and the blocked domains,
// hides the dead tabs, and logs nothing to the console.
func TestOps27DashboardWithoutJavaScript(t *testing.T) {
	t.Parallel()
	ctx := browser(t, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	const hostile = `"<img src=x onerror=document.title='pwned'>"@example.org`
	tx := mustSend(t, r.addr(), hostile, []string{"bob@example.net"}, message("no script"))
	id := queuedID(t, tx.Final)
	resp, err := http.Post(base+"/api/bans", "application/json", strings.NewReader(`{"ip":"192.0.2.7","reason":"test ban"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/bans: %v %v", resp, err)
	}
	resp.Body.Close()

	var mu sync.Mutex
	var console []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				console = append(console, string(m.Type)+": "+m.String())
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx,
		chromedp.WaitVisible(css(`#static-queue`)),
		chromedp.WaitNotVisible(css(`#tabs`)),
	); err != nil {
		t.Fatalf("the page without JavaScript: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(css(`#static-view`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id, "ready", hostile[1:30], "pending <bob@example.net>", "192.0.2.7", "test ban", "1 messages"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page without JavaScript lacks %q:\n%s", want, text)
		}
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "relaykeeper" {
		t.Errorf("title %q, %v; want relaykeeper (a value ran as HTML?)", title, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(console) > 0 {
		t.Errorf("console: %s", strings.Join(console, "\n"))
	}
}

// TestOps27QueueUnreadableSpool: an ordinary user's "relaykeeper queue
// show ID" or "queue delete ID" on the relay's spool (0750, the relay's
// own) said "no such message" of a message that was there, as if it had
// gone, and "mailq" only "permission denied". Each now says that the
// spool may not be read, and whom to run it as.
func TestOps27QueueUnreadableSpool(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root, to run the command as another user")
	}
	top := t.TempDir()
	for _, d := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(top, "spool")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	const id = "emailrelay.4242.1700000000.1"
	envelope := strings.Join([]string{"X-MailRelay-Format: #2821.8", "X-MailRelay-Content: 7bit",
		"X-MailRelay-From: a@example.org", "X-MailRelay-ToCount: 1", "X-MailRelay-To-Remote: b@example.net",
		"X-MailRelay-Authentication: ", "X-MailRelay-Client: 192.0.2.1:1234", "X-MailRelay-End: 1", ""}, "\r\n")
	writeFile(t, dir, id+".envelope", envelope, 0o640)
	writeFile(t, dir, id+".content", "Subject: x\r\n\r\nbody\r\n", 0o640)
	for _, args := range [][]string{{"show", id}, {"hold", id}, {"delete", id}, {"list"}, {"quarantine"}, {"restore", id}} {
		cmd := exec.Command(harness.Binary(t), append(append([]string{"queue"}, args...), "--spool-dir", dir)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 ||
			strings.Contains(string(out), "no such message") || !strings.Contains(string(out), "run this as root") {
			t.Errorf("queue %s as nobody: %v\n%s\nwant exit 1, the spool unreadable and whom to run it as, never \"no such message\"",
				strings.Join(args, " "), err, out)
		}
	}
	// The message is there, untouched.
	if out, _, code := opsCmd(t, "", "queue", "list", "--spool-dir", dir); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "ready") {
		t.Errorf("queue list as root: exit %d\n%s", code, out)
	}
}
