package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSRS runs the relay with --srs-secret: a sender of another domain goes
// upstream as an SRS0 address of the relay's domain, a bounce to that
// address comes back through the relay to the original sender, and an SRS
// address the relay did not sign (anyone can write one) is refused.
func TestSRS(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test"})
	dir := t.TempDir()
	secret := filepath.Join(dir, "srs.secret")
	if err := os.WriteFile(secret, []byte("e2e-srs-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--domain", "relay.test", "--srs-secret", secret, "--spool-dir", filepath.Join(dir, "spool"), "--interface", "127.0.0.1")

	// 1. Forwarded for example.com: the sender is rewritten; the relay's
	// own domain is not.
	mustSend(t, r.addr(), "alice@example.com", []string{"bob@gmail.test"}, message("srs 1"))
	mustSend(t, r.addr(), "carol@relay.test", []string{"bob@gmail.test"}, message("srs 2"))
	txs := up.WaitTransactions(t, 2, 20*time.Second)
	var srsAddr string
	srs0 := regexp.MustCompile(`^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=example\.com=alice@relay\.test$`)
	for _, tx := range txs {
		switch {
		case srs0.MatchString(tx.MailFrom):
			srsAddr = tx.MailFrom
		case tx.MailFrom != "carol@relay.test":
			t.Errorf("upstream MAIL FROM:<%s>; want an SRS0 address for alice@example.com, or carol@relay.test as is", tx.MailFrom)
		}
	}
	if srsAddr == "" {
		t.Fatalf("no SRS0 sender upstream in %+v", txs)
	}

	// 2. The bounce to the SRS address reaches alice@example.com.
	mustSend(t, r.addr(), "", []string{srsAddr}, message("bounce"))
	txs = up.WaitTransactions(t, 3, 20*time.Second)
	if got := txs[2].To(); len(got) != 1 || got[0] != "alice@example.com" || txs[2].MailFrom != "" {
		t.Errorf("the bounce went upstream from <%s> to %v; want <> to alice@example.com", txs[2].MailFrom, got)
	}

	// 3. Forged or altered SRS addresses of the relay are refused, and
	// nothing reaches the upstream.
	for _, forged := range []string{
		"SRS0=abcd=XY=gmail.com=bob@relay.test",
		strings.Replace(srsAddr, "alice", "mallory", 1),
	} {
		tx, err := sendMail(r.addr(), "", []string{forged}, message("forged"))
		if err == nil || len(tx.Rcpt) != 1 || !strings.HasPrefix(tx.Rcpt[0].String(), "550 5.1.1") {
			t.Errorf("RCPT TO:<%s>: %v, %v; want 550 5.1.1", forged, tx.Rcpt, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(up.Transactions()); n != 3 {
		t.Errorf("%d transactions upstream; want 3", n)
	}
}
