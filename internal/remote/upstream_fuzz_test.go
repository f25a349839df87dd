package remote_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// FuzzUpstream: an upstream server answers each command with the next
// reply of a script (greeting, EHLO, then one per command, the final dot
// included), whatever the script holds: malformed lines, wrong codes,
// multi-line replies, too many or too few. The client never panics, and
// it reports a recipient accepted only when the server had the whole
// message, its final dot included, and answered the dot with a 2xx, when
// the server sent one reply at a time (a server that sends two replies for
// one command puts any client out of step, and may as well lie).
func FuzzUpstream(f *testing.F) {
	for _, s := range []string{
		"220 mx.example ESMTP|250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000|250 ok|250 ok|354 go|250 2.0.0 queued|221 bye",
		"220 mx|250 mx|250 ok|550 5.1.1 no|554 no valid recipients|221 bye",
		"220 mx|250-mx\r\n250 PIPELINING|250 ok|250 ok|354 go|250 queued|221",
		"220 mx|250 mx|250 ok|250 ok|250 not 354|250 queued",
		"220 mx|250 mx|250 ok|250 ok|354 go|354 again",
		"220 mx|250 mx|250 ok|250 ok|354 go|250-a\r\n550 b",
		"220 mx|250 mx|250 ok|250 ok|354 go|2500 x",
		"554 go away", "220 mx|250-mx\r\n250 SIZE 18446744073709551616|250 ok", "220 mx|250 mx|250 ok|250 ok|354 go|250 ok|250 ok|250 ok",
		"220 mx|250-mx\r\n250 AUTH PLAIN|250 ok|250 ok|354|250", "220 mx|250 mx|250 ok|250 ok|354 go|\r\n250 x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		replies := strings.Split(script, "|")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			// Out of ephemeral ports after many runs (connections in
			// TIME_WAIT): the machine's state, not the client's.
			return
		}
		defer ln.Close()
		var mu sync.Mutex
		gotDot, dotAnswer := false, ""
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			next := func() (string, bool) {
				if len(replies) == 0 {
					return "", false
				}
				s := replies[0]
				replies = replies[1:]
				return s + "\r\n", true
			}
			s, _ := next()
			c.Write([]byte(s))
			inData := false
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if inData {
					if line != ".\r\n" {
						continue
					}
					inData = false
				}
				s, ok := next()
				if !ok {
					return
				}
				if line == ".\r\n" {
					mu.Lock()
					gotDot, dotAnswer = true, s
					mu.Unlock()
				} else if strings.HasPrefix(strings.ToUpper(line), "DATA") && strings.HasPrefix(s, "354") {
					inData = true
				}
				c.Write([]byte(s))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		opts := remote.Options{ConnectTimeout: 300 * time.Millisecond, ResponseTimeout: 300 * time.Millisecond, DataTimeout: 300 * time.Millisecond}
		c, err := remote.Dial(ctx, ln.Addr().String(), opts)
		if err != nil {
			ln.Close()
			<-done
			return
		}
		defer c.Close()
		res, err := c.Send(ctx, message("bob@example.net"))
		c.Close()
		<-done
		if err == nil && res.Accepted(0) && oneReplyEach(script) {
			mu.Lock()
			defer mu.Unlock()
			if !gotDot || !strings.HasPrefix(dotAnswer, "2") {
				t.Fatalf("script %q: accepted, but the server had the final dot %v and answered it %q (result %+v)", script, gotDot, dotAnswer, res)
			}
		}
	})
}

// oneReplyEach reports whether every reply of a script is one reply: its
// lines but the last are continuation lines ("250-").
func oneReplyEach(script string) bool {
	for _, rep := range strings.Split(script, "|") {
		lines := strings.Split(strings.ReplaceAll(rep, "\r\n", "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			if len(l) < 4 || l[3] != '-' {
				return false
			}
		}
		if strings.Contains(rep, "\r") && strings.Count(rep, "\r") != strings.Count(rep, "\r\n") {
			return false
		}
	}
	return true
}
