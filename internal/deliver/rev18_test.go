package deliver

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestRev18ShutdownDoesNotExpire: with max_queue_lifetime = 0 ("try only
// once"), a delivery that the relay's own shutdown cut short (SIGTERM, the
// grace over, the upstream not yet answering) failed the message as
// expired and sent the sender a failure notice, as if the upstream had
// deferred it; Postfix's queue keeps such mail for the next start. It now
// stays queued.
func TestRev18ShutdownDoesNotExpire(t *testing.T) {
	for name, cut := range map[string]string{"before the greeting": "", "after the text": "."} {
		t.Run(name, func(t *testing.T) { shutdownCut(t, cut) })
	}
}

// shutdownCut runs one delivery to an upstream that stops answering at the
// line cut ("" before its greeting), and stops the relay meanwhile.
func shutdownCut(t *testing.T, cut string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			if cut == "" {
				continue // never greets
			}
			go func() {
				c.Write([]byte("220 up\r\n"))
				br := bufio.NewReader(c)
				for data := false; ; {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch {
					case data && line == cut:
						// no reply: the relay waits until it stops
					case data:
					case strings.HasPrefix(line, "DATA"):
						data = true
						c.Write([]byte("354 go\r\n"))
					case strings.HasPrefix(line, "EHLO"):
						c.Write([]byte("250-up\r\n250 PIPELINING\r\n"))
					default:
						c.Write([]byte("250 ok\r\n"))
					}
				}
			}()
		}
	}()
	sp, s, _, id := setup(t, ln.Addr().String(), "b@example.net")
	ns := &notices{}
	s.opts.Notices = ns
	s.opts.MaxLifetime = Lifetime(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s.RunOnce(ctx)
	_, st, err := sp.Read(id)
	if err != nil || st == spool.Failed {
		t.Errorf("state after a shutdown cut the attempt short = %v, %v; want still queued", st, err)
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if len(ns.got) != 0 {
		t.Errorf("notices = %+v; want none", ns.got)
	}
}
