package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeeds25CopyingContentFilter: FILTER_README (seed 003) says "the
// simplest content filter just copies SMTP commands and data between its
// inputs and outputs", and warns that Postfix aborts delivery to a filter
// that greets it with its own hostname. Here the filter at
// content_filter = "scan:localhost:PORT" is such a copier, straight to the
// reinject listener, so that the relay talks to itself through it: the
// message goes through once and on to the smarthost (relaykeeper's loop
// check is for MX hosts only, docs/filters.md's set-up works as written).
// And "if it has a problem, all it has to do is to reply to an input of
// '.' with '550 content rejected'": the mail is returned to its sender.
func TestSeeds25CopyingContentFilter(t *testing.T) {
	t.Parallel()
	t.Run("copier", func(t *testing.T) {
		t.Parallel()
		sink := harness.NewFakeSMTP(t, harness.Script{})
		reinject := harness.FreePort(t)
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() { // exits when ln is closed
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				u, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", reinject))
				if err != nil {
					c.Close()
					continue
				}
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite() }()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		cfg := writeConfig(t, fmt.Sprintf("[routing]\ncontent_filter = \"scan:localhost:%d\"\n", port))
		r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
			"--config", cfg, "--interface", "127.0.0.1", "--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject),
			"--spool-dir", t.TempDir())
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("copied"))
		txs := sink.WaitTransactions(t, 1, 20*time.Second)
		if to := txs[0].To(); len(to) != 1 || to[0] != "bob@example.net" || !strings.Contains(string(txs[0].Data), "Subject: copied") {
			t.Errorf("the smarthost got %v:\n%s", to, head(string(txs[0].Data)))
		}
		time.Sleep(2 * time.Second)
		if n := len(sink.Transactions()); n != 1 {
			t.Errorf("the smarthost got %d copies; want 1", n)
		}
	})
	t.Run("550 content rejected", func(t *testing.T) {
		t.Parallel()
		sink := harness.NewFakeSMTP(t, harness.Script{})
		filter := harness.NewFakeSMTP(t, harness.Script{Hostname: "localhost", EndOfData: harness.Response{Reply: "550 content rejected"}})
		cfg := writeConfig(t, fmt.Sprintf("[routing]\ncontent_filter = \"scan:%s\"\n", filter.Addr()))
		r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
			"--config", cfg, "--interface", "127.0.0.1", "--interface", "reinject=127.0.0.1:"+fmt.Sprint(harness.FreePort(t)),
			"--spool-dir", t.TempDir())
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("rejected"))
		txs := sink.WaitTransactions(t, 1, 20*time.Second)
		data := string(txs[0].Data)
		if to := txs[0].To(); len(to) != 1 || to[0] != "alice@example.org" || !strings.Contains(data, "content rejected") {
			t.Errorf("after the filter's 550 the smarthost got a message to %v:\n%s\nwant the bounce to alice@example.org quoting it", to, head(data))
		}
		for _, tx := range sink.Transactions() {
			for _, to := range tx.To() {
				if to == "bob@example.net" {
					t.Errorf("the rejected message reached bob@example.net")
				}
			}
		}
	})
}
