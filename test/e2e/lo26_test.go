package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestLo26LongUpstreamReply: an upstream that refused a recipient with a
// reply of more than 100 lines (a 3,000-line 550) was taken for broken:
// the proxy's client heard 451 and tried again for good, and the queued
// message was deferred for good. The reply is now read to its end and its
// code acted on: the proxy's client hears 550, and the queued message
// bounces at its first attempt.
func TestLo26LongUpstreamReply(t *testing.T) {
	t.Parallel()
	lines := make([]string, 3000)
	for i := range lines {
		lines[i] = "550-5.7.1 policy text line"
	}
	lines[len(lines)-1] = "550 5.7.1 refused for good"
	up := harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"long@example.net": {Reply: strings.Join(lines, "\r\n")},
	}})
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, proxy.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "550", "RCPT TO:<long@example.net>")
	mustCmd(t, c, "221", "QUIT")
	c.Close()

	spool := t.TempDir()
	server := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	c = mustDial(t, server.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<long@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "250", "Subject: lo26\r\n\r\nx\r\n.")
	mustCmd(t, c, "221", "QUIT")
	c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if bad, _ := filepath.Glob(filepath.Join(spool, "*.envelope.bad")); len(bad) == 1 {
			break
		}
		if time.Now().After(deadline) {
			left, _ := filepath.Glob(filepath.Join(spool, "*.envelope*"))
			t.Fatalf("queued message not failed at its first attempt; spool has %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLo26TLSHandshakeFollowsIdleTimeout: a client that sends STARTTLS
// and then nothing held its connection for a fixed 30 s, whatever
// --idle-timeout said (Postfix bounds it with smtpd_starttls_timeout,
// 300 s like smtpd_timeout). The handshake now has the idle timeout: with
// --idle-timeout 2 the stalled client is cut after about 2 s.
func TestLo26TLSHandshakeFollowsIdleTimeout(t *testing.T) {
	t.Parallel()
	_, _, pem := certFiles(t, t.TempDir())
	r := startRelay(t, "127.0.0.1", "--as-server", "--server-tls", "--server-tls-certificate", pem,
		"--idle-timeout", "2", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "220", "STARTTLS")
	start := time.Now()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1)
	_, err := c.conn.Read(buf) // the server's close, or our deadline
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stalled TLS handshake cut after %v (%v); want about the idle timeout, 2s", took.Round(time.Second), err)
	}
}
