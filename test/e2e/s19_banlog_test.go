package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestS19BanLogUnusable: a ban log (enforce.ban_log, postfix-enforcer's
// --ban-log) that can take no line, a directory or a file in a folder that
// does not exist, is refused at start, naming the setting; the relay
// started and fail2ban saw nothing until the first ban failed to be
// written. A usable path is created at start, as fail2ban wants its
// logpath to exist before it watches it.
func TestS19BanLogUnusable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, bad := range []string{dir, filepath.Join(dir, "missing", "bans.log")} {
		cfg, code, stderr := cfg19Start(t, "[enforce]\nban_log = \""+bad+"\"\n", "--forward-to", "127.0.0.1:9")
		if code <= 0 || !strings.Contains(stderr, cfg+":2: ") || !strings.Contains(stderr, "ban log") {
			t.Errorf("ban_log = %q: exit %d, stderr %q; want a refusal at %s:2 naming the ban log", bad, code, stderr, cfg)
		}
		_, stderr, code = runBinary(t, harness.Binary(t), "", "postfix-enforcer", "--once", "--log", writeFile(t, dir, "mail.log", "", 0o644),
			"--state", filepath.Join(dir, "state"), "--ban-log", bad, "--welcomelist", filepath.Join(dir, "welcomelist"),
			"--sender-access", filepath.Join(dir, "sender_access"), "--smtp", "127.0.0.1:9", "--sender", "postmaster@relay.test")
		if code == 0 || !strings.Contains(stderr, "--ban-log") {
			t.Errorf("postfix-enforcer --ban-log %s: exit %d, stderr %q; want a refusal naming --ban-log", bad, code, stderr)
		}
	}
	good := filepath.Join(dir, "bans.log")
	if _, code, stderr := cfg19Start(t, "[enforce]\nban_log = \""+good+"\"\n", "--forward-to", "127.0.0.1:9"); code != -1 {
		t.Fatalf("ban_log = %q: exit %d, stderr %q; want the relay running", good, code, stderr)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("the ban log was not created at start: %v", err)
	}
}
