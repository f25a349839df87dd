package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box check of the relay from outside (bb25), over raw TCP to the
// built binary: each case here failed before the fix named in its comment.

// TestBB25ORCPTWithBlankSurvivesSpool: an ORCPT whose xtext decodes to text
// with a blank in it ("sp+20ace@example.net", RFC 3461 section 4.2) is
// relayed as it came, in both modes. The store-and-forward relay kept the
// decoded value in the envelope's Dsn line, split that line at the blank
// and sent "ORCPT=RFC822;sp": the rest was lost, and a decoded
// " NOTIFY=NEVER" in an ORCPT replaced the recipient's own NOTIFY. Blanks
// at either end of an ORCPT or an ENVID were dropped too.
func TestBB25ORCPTWithBlankSurvivesSpool(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"}})
	server := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	rcpts := []struct{ cmd, want string }{
		{"RCPT TO:<bob@example.net> NOTIFY=SUCCESS ORCPT=rfc822;sp+20ace@example.net",
			"NOTIFY=SUCCESS ORCPT=RFC822;sp+20ace@example.net"},
		{"RCPT TO:<dave@example.net> ORCPT=rfc822;+20dave@example.net+20",
			"ORCPT=RFC822;+20dave@example.net+20"},
		{"RCPT TO:<carol@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+20NOTIFY+3DNEVER@example.net",
			"NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;x+20NOTIFY+3DNEVER@example.net"},
	}
	for i, mode := range []struct {
		name string
		r    *relay
	}{{"proxy", proxy}, {"store and forward", server}} {
		t.Run(mode.name, func(t *testing.T) {
			c := mustDial(t, mode.r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org> ENVID=+20lead+20trail+20")
			for _, r := range rcpts {
				mustCmd(t, c, "250", "%s", r.cmd)
			}
			mustCmd(t, c, "354", "DATA")
			mustCmd(t, c, "250", "Subject: bb25\r\n\r\nx\r\n.")
			mustCmd(t, c, "221", "QUIT")
			c.Close()
			var got []harness.Transaction
			for _, tx := range up.WaitTransactions(t, i+1, 10*time.Second) {
				if tx.Accepted() {
					got = append(got, tx)
				}
			}
			if len(got) != i+1 {
				t.Fatalf("upstream accepted %d messages; want %d", len(got), i+1)
			}
			tx := got[i]
			if !strings.Contains(tx.MailParams+" ", " ENVID=+20lead+20trail+20 ") && !strings.HasPrefix(tx.MailParams, "ENVID=+20lead+20trail+20") {
				t.Errorf("MAIL relayed with %q; want ENVID=+20lead+20trail+20", tx.MailParams)
			}
			if len(tx.Rcpts) != len(rcpts) {
				t.Fatalf("upstream recipients = %+v; want %d", tx.Rcpts, len(rcpts))
			}
			for j, r := range rcpts {
				if tx.Rcpts[j].Params != r.want {
					t.Errorf("%q relayed with %q; want %q", r.cmd, tx.Rcpts[j].Params, r.want)
				}
			}
		})
	}
}
