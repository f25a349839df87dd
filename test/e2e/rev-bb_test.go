package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box review of the SMTP listener as an outside SMTP test suite
// sees it; each case here failed before the fix named in its comment.

// TestRevBBProxyDSNParams: the relay offers DSN and takes RET, ENVID,
// NOTIFY and ORCPT in both modes. Store and forward passed them to the
// upstream; proxy mode dropped them (and the client's SIZE), so the
// upstream, which is the one to send the notices in proxy mode, sent a
// failure notice to a recipient's NOTIFY=NEVER and no success notice for
// NOTIFY=SUCCESS (RFC 3461 section 4: a relay passes them on).
func TestRevBBProxyDSNParams(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"proxy", "store and forward"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME", "DSN", "SIZE 52428800"},
				RcptFor: map[string]harness.Response{"erin@example.net": {Reply: "550 5.1.1 no such user"}}})
			args := []string{"--as-proxy", up.Addr()}
			if mode != "proxy" {
				args = []string{"--as-server", "--forward-to", up.Addr(), "--poll", "1"}
			}
			r := startRelay(t, "127.0.0.1", append(args, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())...)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> SIZE=90 RET=HDRS ENVID=QQ+2Bxyz")
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+2Bold@example.net")
			// A recipient the upstream refuses takes its parameters
			// with it: the next one's are its own.
			erin := "250"
			if mode == "proxy" {
				erin = "550"
			}
			mustCmd(t, c, erin, "RCPT TO:<erin@example.net> NOTIFY=DELAY")
			mustCmd(t, c, "250", "RCPT TO:<carol@example.net> NOTIFY=NEVER")
			mustCmd(t, c, "250", "RCPT TO:<dave@example.net>")
			mustCmd(t, c, "354", "DATA")
			mustCmd(t, c, "250", "Subject: dsn\r\n\r\nthe text\r\n.")
			txs := up.WaitTransactions(t, 1, 15*time.Second)
			tx := txs[0]
			for _, p := range []string{"RET=HDRS", "ENVID=QQ+2Bxyz"} {
				if !strings.Contains(" "+tx.MailParams+" ", " "+p+" ") {
					t.Errorf("upstream MAIL parameters %q; want %s among them", tx.MailParams, p)
				}
			}
			if mode == "proxy" && !strings.Contains(tx.MailParams, "SIZE=90") {
				t.Errorf("upstream MAIL parameters %q; want the client's SIZE=90", tx.MailParams)
			}
			want := map[string]string{
				"bob@example.net":   "NOTIFY=SUCCESS,DELAY ORCPT=RFC822;bob+2Bold@example.net",
				"carol@example.net": "NOTIFY=NEVER",
				"dave@example.net":  "",
				"erin@example.net":  "NOTIFY=DELAY",
			}
			if len(tx.Rcpts) != len(want) {
				t.Fatalf("upstream recipients %+v; want %d", tx.Rcpts, len(want))
			}
			for _, rc := range tx.Rcpts {
				if got := strings.Replace(rc.Params, "ORCPT=rfc822;", "ORCPT=RFC822;", 1); got != want[rc.Addr] {
					t.Errorf("upstream RCPT TO:<%s> parameters %q; want %q", rc.Addr, rc.Params, want[rc.Addr])
				}
			}
		})
	}
}

// TestRevBBShutdown421: on SIGTERM a client waiting at the command prompt
// hears "421 4.3.2" at once, and a client in the middle of its message
// text finishes it, hears the 250 for it, and then the 421 (RFC 5321
// section 3.8: a server closes the connection only after QUIT, or with a
// 421 when it shuts down). Before, both were cut without a word at the
// end of the shutdown grace (10 s): the idle one waited all that time, and
// one that started a transaction in the grace lost it when it was cut.
func TestRevBBShutdown421(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--domain", "relay.e2e.test")
	idle := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, idle, "250", "EHLO idle.e2e.test")
	busy := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, busy, "250", "EHLO busy.e2e.test")
	mustCmd(t, busy, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, busy, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, busy, "354", "DATA")
	fmt.Fprintf(busy.conn, "Subject: shutdown\r\n\r\nthe first half\r\n")
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	r.current().Signal(syscall.SIGTERM)
	rep, err := idle.read()
	if err != nil || rep.code() != 421 || !strings.HasPrefix(rep.String(), "421 4.3.2 relay.e2e.test ") {
		t.Errorf("idle client after SIGTERM: %q, %v; want 421 4.3.2 relay.e2e.test ...", rep, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle client heard it after %v; want it at once", d)
	}
	time.Sleep(500 * time.Millisecond)
	if rep, err := busy.cmd("the second half\r\n."); err != nil || rep.code() != 250 {
		t.Fatalf("final dot after SIGTERM: %q, %v; want 250, within the grace", rep, err)
	}
	if rep, err := busy.cmd("MAIL FROM:<alice@example.org>"); err != nil || !strings.HasPrefix(rep.String(), "421 4.3.2 ") {
		t.Errorf("next command after the message: %q, %v; want 421 4.3.2", rep, err)
	}
	code, err := r.current().Wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("relaykeeper after SIGTERM: exit %d, %v; want 0", code, err)
	}
}
