package smtpd

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

var _ UpstreamDialer = (*remote.Dialer)(nil)
var _ UpstreamDialer = (*countingDialer)(nil)

// countingDialer counts the upstream sessions the proxy opens.
type countingDialer struct {
	d     remote.Dialer
	dials atomic.Int32
}

func (c *countingDialer) Dial(ctx context.Context, addr string) (*remote.Conn, error) {
	c.dials.Add(1)
	return c.d.Dial(ctx, addr)
}

// startProxy starts a proxying server in front of a real smtp-sink.
func startProxy(t *testing.T, sinkOpts harness.SinkOptions) (*testServer, *harness.Sink, *countingDialer) {
	t.Helper()
	sink := harness.StartSink(t, sinkOpts)
	d := &countingDialer{d: remote.Dialer{Options: remote.Options{Helo: "relay.test", ResponseTimeout: 5 * time.Second}}}
	ts := startServer(t, func(o *Options) {
		o.Proxy = &Proxy{Addr: sink.Addr(), Dialer: d, IdleTimeout: time.Minute}
	})
	return ts, sink, d
}

// dialClient connects to the relay and says EHLO.
func dialClient(t *testing.T, addr, helo string) *rawSession {
	t.Helper()
	c := rawDial(t, addr)
	c.expect("EHLO "+helo, "250")
	return c
}

// expect sends line and fails unless the reply starts with code.
func (s *rawSession) expect(line, code string) {
	s.t.Helper()
	if got := s.cmd(line); !strings.HasPrefix(got, code) {
		s.t.Fatalf("%q: got %q; want %s", line, got, code)
	}
}

// message sends one whole transaction and expects code after the dot.
func (s *rawSession) message(from, to, body, code string) {
	s.t.Helper()
	s.expect("MAIL FROM:<"+from+">", "250")
	s.expect("RCPT TO:<"+to+">", "250")
	s.expect("DATA", "354")
	s.expect(body+"\r\n.", code)
}

func (s *rawSession) quit() {
	s.t.Helper()
	s.expect("QUIT", "221")
	s.c.Close()
}

// waitIdle waits until the relay has given its upstream sessions back to
// the pool: after the client's reply, at go-smtp's reset.
func waitIdle(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ts.srv.upstreams.idleCount() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("idle upstream sessions: %d; want %d", ts.srv.upstreams.idleCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUpstreamReuse: client sessions one after another share one upstream
// session, and nothing of one client (its HELO name, its sender) travels
// with the session to the next: the upstream session carries only the
// relay's own EHLO, and each message its own envelope and Received header.
func TestUpstreamReuse(t *testing.T) {
	ts, sink, d := startProxy(t, harness.SinkOptions{})
	clients := []struct{ helo, from, to string }{
		{"client-a.test", "a@client-a.test", "x@sink.test"},
		{"client-b.test", "b@client-b.test", "y@sink.test"},
		{"client-c.test", "c@client-c.test", "z@sink.test"},
	}
	for i, cl := range clients {
		c := dialClient(t, ts.addr, cl.helo)
		c.message(cl.from, cl.to, "Subject: "+cl.helo+"\r\n\r\nhello", "250")
		c.quit()
		waitIdle(t, ts, 1)
		if n := d.dials.Load(); n != 1 {
			t.Fatalf("after client %d: %d upstream dials; want 1", i, n)
		}
	}
	sink.WaitCount(t, len(clients), 5*time.Second)
	msgs := sink.Messages()
	if len(msgs) != len(clients) {
		t.Fatalf("sink has %d messages; want %d", len(msgs), len(clients))
	}
	// The dump files' order is not the order of arrival.
	slices.SortFunc(msgs, func(a, b harness.SinkMessage) int { return strings.Compare(a.From, b.From) })
	for i, m := range msgs {
		cl := clients[i]
		if m.Helo != "relay.test" {
			t.Errorf("message %d: upstream saw HELO %q; want the relay's own, relay.test", i, m.Helo)
		}
		if m.From != cl.from || strings.Join(m.To, ",") != cl.to {
			t.Errorf("message %d: envelope %s -> %v; want %s -> %s", i, m.From, m.To, cl.from, cl.to)
		}
		if !strings.Contains(m.Data, "from "+cl.helo+" ") {
			t.Errorf("message %d: Received header does not name %s:\n%s", i, cl.helo, m.Data)
		}
		for j, other := range clients {
			if j != i && (strings.Contains(m.Data, other.helo) || strings.Contains(m.Data, other.from)) {
				t.Errorf("message %d carries client %d's identity (%s):\n%s", i, j, other.helo, m.Data)
			}
		}
	}
}

// TestUpstreamIdleSessionLost: the upstream ends the pooled session while
// it is idle (here it restarts); the next client's message still goes
// through, on one fresh session, and the client hears nothing of it.
func TestUpstreamIdleSessionLost(t *testing.T) {
	ts, sink, d := proxyWithOnePooled(t)
	sink.Stop()
	sink.Restart()

	c := dialClient(t, ts.addr, "client-b.test")
	c.message("b@client-b.test", "y@sink.test", "Subject: two\r\n\r\ntwo", "250")
	c.quit()
	if n := d.dials.Load(); n != 2 {
		t.Errorf("%d upstream dials; want 2 (the first, and one fresh session after the loss)", n)
	}
	if n := sink.WaitCount(t, 2, 5*time.Second); n != 2 {
		t.Errorf("sink has %d messages; want 2", n)
	}
}

// TestUpstreamAbortedTransaction: a client that leaves after RCPT, or
// whose DATA the upstream refused, leaves the upstream in a transaction; the
// session is reset before anyone else uses it, so the next client's MAIL is
// not a nested one and its message carries only its own recipient.
func TestUpstreamAbortedTransaction(t *testing.T) {
	t.Run("client leaves", func(t *testing.T) {
		ts, sink, d := startProxy(t, harness.SinkOptions{})
		a := dialClient(t, ts.addr, "client-a.test")
		a.expect("MAIL FROM:<a@client-a.test>", "250")
		a.expect("RCPT TO:<x@sink.test>", "250")
		a.c.Close() // gone, mid-transaction
		waitIdle(t, ts, 1)

		b := dialClient(t, ts.addr, "client-b.test")
		b.message("b@client-b.test", "y@sink.test", "Subject: b\r\n\r\nb", "250")
		b.quit()
		if n := d.dials.Load(); n != 1 {
			t.Errorf("%d upstream dials; want 1", n)
		}
		sink.WaitCount(t, 1, 5*time.Second)
		msgs := sink.Messages()
		if len(msgs) != 1 || msgs[0].From != "b@client-b.test" || strings.Join(msgs[0].To, ",") != "y@sink.test" {
			t.Fatalf("sink got %+v; want one message b@client-b.test -> y@sink.test", msgs)
		}
	})
	t.Run("upstream refuses DATA", func(t *testing.T) {
		ts, _, d := startProxy(t, harness.SinkOptions{HardReject: []string{"DATA"},
			HardReply: "554 5.5.1 Error: no valid recipients"})
		for _, who := range []string{"a", "b"} {
			c := dialClient(t, ts.addr, "client-"+who+".test")
			// The upstream's own refusal, after the dot; MAIL is
			// never answered "503 nested MAIL command".
			c.message(who+"@client.test", who+"@sink.test", "Subject: "+who+"\r\n\r\n"+who, "554 5.5.1")
			c.quit()
			waitIdle(t, ts, 1)
		}
		if n := d.dials.Load(); n != 1 {
			t.Errorf("%d upstream dials; want 1", n)
		}
	})
}

// TestUpstreamPoolBounds: an idle session is ended after the idle timeout,
// and no more than MaxIdle wait.
func TestUpstreamPoolBounds(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{})
	d := &countingDialer{d: remote.Dialer{Options: remote.Options{Helo: "relay.test", ResponseTimeout: 5 * time.Second}}}
	ts := startServer(t, func(o *Options) {
		o.Proxy = &Proxy{Addr: sink.Addr(), Dialer: d, MaxIdle: 1, IdleTimeout: 200 * time.Millisecond}
	})
	// Two clients in transactions at once need two upstream sessions;
	// only one stays.
	a := dialClient(t, ts.addr, "client-a.test")
	b := dialClient(t, ts.addr, "client-b.test")
	a.expect("MAIL FROM:<a@client.test>", "250")
	b.expect("MAIL FROM:<b@client.test>", "250")
	a.expect("RSET", "250")
	b.expect("RSET", "250")
	waitIdle(t, ts, 1)
	if n := d.dials.Load(); n != 2 {
		t.Errorf("%d upstream dials; want 2", n)
	}
	// And it goes after the idle timeout.
	waitIdle(t, ts, 0)
	a.expect("MAIL FROM:<a@client.test>", "250")
	if n := d.dials.Load(); n != 3 {
		t.Errorf("%d upstream dials; want 3", n)
	}
}

// TestUpstreamPoolShutdown: Shutdown ends the idle upstream sessions.
func TestUpstreamPoolShutdown(t *testing.T) {
	ts, _, _ := startProxy(t, harness.SinkOptions{})
	c := dialClient(t, ts.addr, "client-a.test")
	c.message("a@client-a.test", "x@sink.test", "Subject: a\r\n\r\na", "250")
	c.quit()
	waitIdle(t, ts, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ts.srv.upstreams.idleCount(); n != 0 {
		t.Errorf("after Shutdown: %d idle upstream sessions; want 0", n)
	}
}

// TestUpstreamRefusalReplyBeforeRSET: when the upstream refuses the message,
// the client hears the refusal while the pool is still saying RSET to the
// upstream (which takes two seconds here), not after: the replies the
// command layer holds back are written before the session waits for the
// upstream.
func TestUpstreamRefusalReplyBeforeRSET(t *testing.T) {
	ts, _, _ := startProxy(t, harness.SinkOptions{HardReject: []string{"."},
		Delay: map[string]time.Duration{"RSET": 2 * time.Second}})
	c := dialClient(t, ts.addr, "client.test")
	c.message("a@client.test", "b@sink.test", "Subject: refused\r\n\r\nbody", "5")
	if n := ts.srv.upstreams.idleCount(); n != 0 {
		t.Errorf("the client heard the refusal after the upstream's RSET (%d idle sessions); want it before", n)
	}
	waitIdle(t, ts, 1)
	c.quit()
}

// TestS28PooledSessionCheckedWhenTaken: a pooled session the upstream
// closed while it was idle is found when it is taken, by a look at its
// socket then, not by one made when it was put back (which saw nothing,
// and whose answer was kept): the next client's MAIL then goes to a
// fresh session at once, not first to a dead one.
func TestS28PooledSessionCheckedWhenTaken(t *testing.T) {
	ts, sink, d := proxyWithOnePooled(t)
	sink.Stop()
	time.Sleep(100 * time.Millisecond) // the upstream's FIN arrives
	sink.Restart()

	uc, err := ts.srv.upstreams.get(context.Background())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer uc.Close()
	if uc.reused {
		t.Errorf("get returned the pooled session the upstream had closed; want a fresh one")
	}
	if n := d.dials.Load(); n != 2 {
		t.Errorf("%d upstream dials; want 2", n)
	}
}

// proxyWithOnePooled starts a proxy before a sink and sends one message
// through it, so that one upstream session waits in the pool.
func proxyWithOnePooled(t *testing.T) (*testServer, *harness.Sink, *countingDialer) {
	t.Helper()
	ts, sink, d := startProxy(t, harness.SinkOptions{})
	c := dialClient(t, ts.addr, "client-a.test")
	c.message("a@client-a.test", "x@sink.test", "Subject: one\r\n\r\none", "250")
	c.quit()
	waitIdle(t, ts, 1)
	return ts, sink, d
}
