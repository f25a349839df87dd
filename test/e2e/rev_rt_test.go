package e2e

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestRevRtHopcount: a message with 49 Received: headers (50 hops with
// the relay's own) is refused at the final dot with Postfix's "554 5.4.0
// Error: too many hops" (hopcount_limit); one with 48 is accepted.
func TestRevRtHopcount(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	if _, final := opsSend(t, r.addr(), "client.example", "<a@example.org>", []string{"<b@example.net>"}, hops(48)); final.code() != 250 {
		t.Errorf("48 Received headers: final reply %q; want 250", final)
	}
	_, final := opsSend(t, r.addr(), "client.example", "<a@example.org>", []string{"<b@example.net>"}, hops(49))
	if final.String() != "554 5.4.0 Error: too many hops" {
		t.Errorf("49 Received headers and ours: final reply %q; want 554 5.4.0 Error: too many hops", final)
	}
}

// hops is a message with n Received: header fields.
func hops(n int) string {
	return strings.Repeat("Received: from a.example by b.example; Sat, 5 Dec 2026 00:00:00 +0000\n", n) + message("hops")
}

// TestRevRtLoop: a relay whose smarthost leads back to itself (here
// through a port forwarder) took its own message again and again, one
// more Received header each turn, forever: with --forward-on-disconnect
// as fast as it could. The hop count ends the loop: the relay refuses its
// own copy after 50 hops, and the delivery fails.
func TestRevRtLoop(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var target atomic.Value
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				addr, _ := target.Load().(string)
				u, err := net.Dial("tcp4", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close(); c.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces", "--interface", "127.0.0.1",
		"--spool-dir", t.TempDir(), "--forward-to", ln.Addr().String())
	target.Store(r.addr())
	// The message has been around already: each turn takes the relay's
	// connection cache time (2.5 s), so 50 turns would be a long test.
	if _, final := opsSend(t, r.addr(), "client.example", "<alice@example.org>", []string{"<bob@example.net>"}, hops(44)); final.code() != 250 {
		t.Fatalf("final reply %q; want 250", final)
	}
	e := r.waitEvent("delivery", 30*time.Second, func(e *maillog.Entry) bool { return e.Get("result") == "bounced" || e.Get("result") == "failed" })
	if !strings.Contains(e.Get("reply"), "5.4.0") || !strings.Contains(e.Get("reply"), "too many hops") {
		t.Errorf("the looping message failed with %v; want the relay's own 554 5.4.0 too many hops", e.Fields)
	}
	if n := len(r.events("accept")); n != 5 {
		t.Errorf("%d accepts; want 5: the loop ended at 50 hops", n)
	}
}
