package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo27ClientFilterDiesWithRelay: a client filter (--client-filter)
// that prepends a header is asleep when the relay is killed (kill -9).
// After the restart the message, put back as it was accepted, goes
// through the filter once more; the first run must not wake up and edit
// it too: the upstream must see the header once.
func TestLo27ClientFilterDiesWithRelay(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	started := filepath.Join(t.TempDir(), "started")
	edit := script(t, "edit", `touch '`+started+`'
sleep 3
{ printf 'X-Lo27: edited\r\n'; cat "$1"; } > "$1.tmp" && mv "$1.tmp" "$1"
exit 0
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--client-filter", edit, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("edit once"))
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(started); return err == nil }) {
		t.Fatal("the client filter did not start within 10 s")
	}
	r.kill()
	r.restart()
	tx := sink.WaitTransactions(t, 1, 20*time.Second)[0]
	time.Sleep(3 * time.Second) // the first run's sleep over, had it lived
	if n := strings.Count(string(tx.Data), "X-Lo27: edited"); n != 1 {
		t.Errorf("the upstream got the filter's header %d times; want once:\n%s", n, tx.Data)
	}
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("the upstream saw %d transactions; want 1", n)
	}
	if names := lo27Files(t, spool, ".tmp"); len(names) > 0 {
		t.Errorf("the spool holds %v; want no temporary file", names)
	}
}

// TestLo27ServerFilterTempRemoved: a --filter that writes "$1.tmp" (as
// E-MailRelay's guide's scripts do) is killed with the relay before its
// mv. The message was never acknowledged; after the restart nothing of it
// may be left in the spool, its ID.content.tmp neither.
func TestLo27ServerFilterTempRemoved(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	f := script(t, "slow", `cat "$1" > "$1.tmp"
sleep 3
mv "$1.tmp" "$1"
exit 0
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", f, "--interface", "127.0.0.1", "--spool-dir", spool)
	done := make(chan error, 1)
	go func() {
		_, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("killed in its filter"))
		done <- err
	}()
	if !waitFor(10*time.Second, func() bool { return len(lo27Files(t, spool, ".content.tmp")) == 1 }) {
		t.Fatal("the filter wrote no ID.content.tmp within 10 s")
	}
	r.kill()
	<-done
	r.restart()
	time.Sleep(4 * time.Second) // the filter's sleep over, had it lived
	if names := lo27Files(t, spool, ".tmp"); len(names) > 0 {
		t.Errorf("after the restart the spool holds %v; want no filter temporary file", names)
	}
	if ids := messageIDs(t, spool); len(ids) > 0 {
		t.Errorf("after the restart the spool holds messages %v; want none (never acknowledged)", ids)
	}
}

// lo27Files lists the names in dir that end in suffix.
func lo27Files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	des, _ := os.ReadDir(dir)
	var out []string
	for _, d := range des {
		if strings.HasSuffix(d.Name(), suffix) {
			out = append(out, d.Name())
		}
	}
	return out
}
