package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSpool21SelectJournalOnly: after a crash, a message only in the dead
// relay's journal is listed ("journal") and a command naming its id says
// it cannot be changed yet (exit 1). But --all, --match and --state left
// it out: "queue delete --match spammer@" or "queue hold --all" answered
// "0 done" with exit status 0, and the relay's next start sent the very
// mail the administrator had just asked to stop. Such messages are now
// selected too, and reported as not done, so the exit status says so.
func TestSpool21SelectJournalOnly(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Mail: harness.Response{Delay: 20 * time.Second}})
	spoolDir := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spoolDir)
	tx := mustSend(t, r.addr(), "spammer@example.org", []string{"bob@example.net"}, message("stop me"))
	id := queuedID(t, tx.Final)
	r.kill()
	if _, err := os.Stat(filepath.Join(spoolDir, id+".content")); err == nil {
		t.Skip("the relay wrote the message's files before it was killed: nothing to show")
	}
	for _, args := range [][]string{
		{"hold", "--all"},
		{"delete", "--match", "spammer@"},
		{"delete", "--state", "ready"},
		{"retry", "--all"},
	} {
		out, errOut, code := opsCmd(t, "", append(append([]string{"queue"}, args...), "--spool-dir", spoolDir)...)
		if code != 1 || !strings.Contains(out, id) || !strings.Contains(out, "journal") {
			t.Errorf("queue %v with %s only in a dead relay's journal: exit %d\n%s%s\nwant it named as not done (journal), exit 1",
				args, id, code, out, errOut)
		}
	}
	// Nothing selects it for release (it was accepted ready, not held).
	if out, _, code := opsCmd(t, "", "queue", "release", "--all", "--spool-dir", spoolDir); code != 0 || strings.Contains(out, id) {
		t.Errorf("queue release --all: exit %d\n%s\nwant the ready journal message left out", code, out)
	}
}
