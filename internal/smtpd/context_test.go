package smtpd

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/policy"
)

// waitingPolicy stands for a slow DNSBL or verifier: it answers only when
// its context ends, and then defers.
type waitingPolicy struct{ called chan struct{} }

func (p waitingPolicy) Check(ctx context.Context, _ policy.Stage, _ *policy.Request) policy.Decision {
	close(p.called)
	<-ctx.Done()
	return policy.Decision{Verdict: policy.Defer, Code: 451, Enhanced: "4.3.0", Text: "cancelled: " + ctx.Err().Error()}
}

var _ Checker = waitingPolicy{}

// TestContextCancelsCalls: ending Options.Context cancels a policy check
// under way, which would otherwise hold its session as long as it likes.
func TestContextCancelsCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := waitingPolicy{called: make(chan struct{})}
	ts := startServer(t, func(o *Options) { o.Policy = p; o.Context = ctx })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	readReply := func() string {
		t.Helper()
		var last string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v (so far %q)", err, last)
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimSpace(l)
			}
			last = l
		}
	}
	readReply() // greeting
	c.Write([]byte("EHLO client.test\r\n"))
	readReply()
	c.Write([]byte("MAIL FROM:<a@example.org>\r\n"))
	<-p.called
	cancel()
	if got := readReply(); !strings.HasPrefix(got, "451") || !strings.Contains(got, "context canceled") {
		t.Errorf("MAIL FROM reply = %q; want the policy's 451 after its context was cancelled", got)
	}
}
