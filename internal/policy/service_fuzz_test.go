package policy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzPolicyServiceResponse: whatever a policy service answers (it is
// another program, perhaps a broken one), the decision is a valid one:
// a refusal has a 4xx or 5xx code and a reply on one line of printable
// text, and no PREPEND field, BCC, REDIRECT or FILTER result holds a
// control character that could start another header field or command.
func FuzzPolicyServiceResponse(f *testing.F) {
	for _, s := range []string{
		"action=REJECT not for you\nother=ignored\n\n", "action=DUNNO\n\n", "other=1\n\n", "garbage\n\n",
		"action=450 4.7.1 try\rlater\n\n", "action=PREPEND X-Policy: a\r\nBcc: eve@example.net\n\n",
		"action=DEFER_IF_PERMIT x\n\n", "action=554 5.7.1\x00\x1b[31m\n\n", "action=REDIRECT eve@example.net\n\n",
		"action=BCC a\x00b@example.net\n\n", "action=FILTER smtp:[127.0.0.1]:10025\n\n", "action=HOLD\n\n", "action=permit_mynetworks, reject\n\n",
		"action=OK\naction=REJECT\n\n", "action=", "action=REJECT\n",
	} {
		f.Add(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	answer := ""
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 8192)
			for n := 0; ; {
				m, err := c.Read(buf[n:])
				n += m
				if err != nil || strings.Contains(string(buf[:n]), "\n\n") || n == len(buf) {
					break
				}
			}
			mu.Lock()
			a := answer
			mu.Unlock()
			c.Write([]byte(a))
			c.Close()
		}
	}()
	e, err := New(Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Recipient:  []string{"check_policy_service { inet:" + ln.Addr().String() + ", timeout=5s, max_idle=1s }"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, resp string) {
		mu.Lock()
		answer = resp
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d := e.Check(ctx, StageRcpt, policyReq)
		if d.Verdict == Reject || d.Verdict == Defer {
			if d.Code < 400 || d.Code > 599 {
				t.Fatalf("response %q: %v with code %d", resp, d.Verdict, d.Code)
			}
		}
		checkLine := func(what, s string) {
			if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				t.Fatalf("response %q: %s %q holds a control character", resp, what, s)
			}
		}
		checkLine("reply", d.Reply())
		checkLine("filter", d.Filter)
		checkLine("redirect", d.Redirect)
		for _, p := range d.Prepend {
			checkLine("prepend", p)
		}
		for _, b := range d.BCC {
			checkLine("bcc", b)
		}
		for _, w := range d.Warnings {
			checkLine("warning", w)
		}
	})
}
