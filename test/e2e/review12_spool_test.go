package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Review 12, the spool's journalled commit that trusts the envelope Prepare
// wrote unless a filter was given the paths: a filter that edits the
// content and the envelope by renaming new files over them (E-MailRelay's
// addsig, "mv $1.tmp $1"), small messages and ones the filter makes larger
// than the journal takes, with the relay killed (SIGKILL) while clients
// send. Every acknowledged message is delivered as the filter left it, and
// no message is ever delivered as received, unfiltered.

const review12Addsig = `c="$1"; e="$2"
if grep -q '^X-Big: yes' "$c"; then
	{ cat "$c"; i=0; while [ $i -lt 24000 ]; do printf 'padding line of the filter, to pass the journal limit, 64 octets\r\n'; i=$((i+1)); done; } > "$c.tmp" || exit 1
else
	cat "$c" > "$c.tmp" || exit 1
fi
printf -- '-- \r\nsigned by review 12\r\n' >> "$c.tmp" && mv "$c.tmp" "$c" || exit 1
sed 's/bob@example\.net/carol@example.net/' "$e" > "$e.tmp" && mv "$e.tmp" "$e" || exit 1
exit 0
`

func TestReview12FilterEditsKill(t *testing.T) {
	t.Parallel()
	var refuse sync.Mutex
	refusing := true
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, _ harness.Transaction, _ string) harness.Response {
		refuse.Lock()
		defer refuse.Unlock()
		if st == harness.StageMail && refusing {
			return harness.Response{Reply: "451 4.3.0 not yet"}
		}
		return harness.Response{}
	}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "1",
		"--filter", script(t, "addsig", review12Addsig), "--config", writeConfig(t, ""),
		"--interface", "127.0.0.1", "--spool-dir", spool)

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := senders(3, func(s, k int) {
		tag := fmt.Sprintf("edit-%d-%d", s, k)
		body := "Subject: " + tag + "\n"
		if k%3 == 2 {
			body += "X-Big: yes\n"
		}
		body += "\nbody of " + tag + "\n"
		if _, err := sendMail(r.addr(), tag+"@example.org", []string{"bob@example.net"}, body); err == nil {
			mu.Lock()
			acked[tag] = true
			mu.Unlock()
		}
	})
	for round := range 3 {
		time.Sleep(time.Duration(700+300*round) * time.Millisecond)
		r.kill()
		r.restart()
	}
	stop()
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 6 {
		t.Fatalf("only %d messages acknowledged; the test needs more", n)
	}
	if !waitFor(60*time.Second, func() bool {
		got := map[string]bool{}
		for _, tx := range up.Transactions() {
			if tx.Accepted() {
				got[strings.TrimSuffix(tx.MailFrom, "@example.org")] = true
			}
		}
		for tag := range acked {
			if !got[tag] {
				return false
			}
		}
		return true
	}) {
		t.Errorf("not every acknowledged message was delivered in 60s")
	}
	delivered := map[string]bool{}
	for _, tx := range up.Transactions() {
		if !tx.Accepted() {
			continue
		}
		tag := strings.TrimSuffix(tx.MailFrom, "@example.org")
		delivered[tag] = true
		d := string(tx.Data)
		if !strings.HasSuffix(d, "-- \r\nsigned by review 12\r\n") {
			t.Errorf("%s: delivered without the filter's signature (acknowledged %v): ...%q", tag, acked[tag], d[max(0, len(d)-80):])
		}
		if to := tx.To(); len(to) != 1 || to[0] != "carol@example.net" {
			t.Errorf("%s: delivered to %q; want the filter's carol@example.net (acknowledged %v)", tag, to, acked[tag])
		}
		if strings.Contains(d, "X-Big: yes") && len(d) < 1500000 {
			t.Errorf("%s: %d octets; want the filter's padding too", tag, len(d))
		}
	}
	for tag := range acked {
		if !delivered[tag] {
			t.Errorf("%s: acknowledged, never delivered (lost)", tag)
		}
	}
	t.Logf("%d acknowledged, %d delivered", len(acked), len(delivered))
}

// TestReview12FilterEditsPowerLoss: as after a power loss. Messages
// accepted through the addsig filter, the relay killed right after the
// last 250; then every file of those messages that only the journal made
// durable (their id is in a journal segment left behind) is removed, the
// worst a power loss can do to files not yet synced, and the relay starts
// under another boot id (bind-mounted in a mount namespace of its own), so
// that it replays the journal. Every acknowledged message comes back and is
// delivered as the filter left it.
func TestReview12FilterEditsPowerLoss(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		needFor(t, "a faked boot id", errors.New("needs root"))
	}
	_, err := exec.LookPath("unshare")
	needFor(t, "a faked boot id", err)
	up := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	// No forwarding before the "power loss": a poll once an hour.
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--poll", "3600",
		"--filter", script(t, "addsig", review12Addsig), "--interface", "127.0.0.1", "--spool-dir", spool)
	var mu sync.Mutex
	acked := map[string]string{} // tag -> id
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 4 {
				tag := fmt.Sprintf("power-%d-%d", s, k)
				body := "Subject: " + tag + "\n"
				if k == 3 {
					body += "X-Big: yes\n"
				}
				body += "\nbody of " + tag + "\n"
				if tx, err := sendMail(r.addr(), tag+"@example.org", []string{"bob@example.net"}, body); err == nil {
					mu.Lock()
					acked[tag] = strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	r.kill()
	if len(acked) != 16 {
		t.Fatalf("%d of 16 messages acknowledged", len(acked))
	}
	segs, _ := filepath.Glob(filepath.Join(spool, ".journal", "*"))
	var journal []byte
	for _, s := range segs {
		b, _ := os.ReadFile(s)
		journal = append(journal, b...)
	}
	lost := 0
	for _, id := range acked {
		if !bytes.Contains(journal, []byte(id)) {
			continue
		}
		lost++
		files, _ := filepath.Glob(filepath.Join(spool, id+".*"))
		for _, f := range files {
			os.Remove(f)
		}
	}
	t.Logf("%d journal segments; the files of %d of %d messages removed", len(segs), lost, len(acked))
	if lost == 0 {
		t.Logf("no acknowledged message was only in the journal: the power loss tested nothing")
	}

	boot := filepath.Join(t.TempDir(), "boot_id")
	os.WriteFile(boot, []byte("12121212-1212-4212-8212-121212121212\n"), 0o644)
	after := startRelayWith(t, "127.0.0.1", "unshare", "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf(`mount --bind '%s' /proc/sys/kernel/random/boot_id && exec "$0" "$@"`, boot), harness.Binary(t),
		"--as-server", "--forward-to", up.Addr(), "--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool)
	got := map[string][]harness.Transaction{}
	waitFor(30*time.Second, func() bool {
		got = map[string][]harness.Transaction{}
		for _, tx := range up.Transactions() {
			if tx.Accepted() {
				tag := strings.TrimSuffix(tx.MailFrom, "@example.org")
				got[tag] = append(got[tag], tx)
			}
		}
		return len(got) >= len(acked)
	})
	for tag, id := range acked {
		txs := got[tag]
		if len(txs) == 0 {
			t.Errorf("%s (%s): acknowledged, not delivered after the power loss (lost)", tag, id)
			continue
		}
		d := string(txs[0].Data)
		if !strings.HasSuffix(d, "-- \r\nsigned by review 12\r\n") {
			t.Errorf("%s (%s): delivered without the filter's signature: ...%q", tag, id, d[max(0, len(d)-80):])
		}
		if to := txs[0].To(); len(to) != 1 || to[0] != "carol@example.net" {
			t.Errorf("%s (%s): delivered to %q; want the filter's carol@example.net", tag, id, to)
		}
	}
	if t.Failed() {
		t.Logf("relay after the power loss:\n%s", after.stderr())
	}
}
