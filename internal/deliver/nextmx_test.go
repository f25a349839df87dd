package deliver

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// mxRouter routes everything to one destination whose MX hosts are the
// upstreams, in order; it records what DialNext was asked.
type mxRouter struct {
	hosts []*upstream
	mu    sync.Mutex
	tried [][]string // DialNext's tried, per call
}

func (m *mxRouter) Route(string, string) route.Destination {
	return route.Destination{Key: "smtp/mx.example", ConcurrencyLimit: 1}
}

func (m *mxRouter) Dial(ctx context.Context, dst route.Destination) (*remote.Conn, string, error) {
	conn, relay, _, err := m.dialFrom(ctx, nil)
	return conn, relay, err
}

func (m *mxRouter) DialHosts(ctx context.Context, dst route.Destination) (*remote.Conn, string, []route.PassedHost, error) {
	return m.dialFrom(ctx, nil)
}

func (m *mxRouter) DialNext(ctx context.Context, dst route.Destination, tried []string) (*remote.Conn, string, []route.PassedHost, error) {
	m.mu.Lock()
	m.tried = append(m.tried, slices.Clone(tried))
	m.mu.Unlock()
	return m.dialFrom(ctx, tried)
}

func (m *mxRouter) dialFrom(ctx context.Context, tried []string) (*remote.Conn, string, []route.PassedHost, error) {
	for i, h := range m.hosts {
		if slices.Contains(tried, h.addr) {
			continue
		}
		relay := "mx" + string(rune('1'+i)) + ".example[" + h.addr + "]"
		c, err := remote.Dial(ctx, h.addr, remote.Options{Helo: "relay.test", ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second})
		if err != nil {
			return nil, relay, []route.PassedHost{{Addr: h.addr, Relay: relay, Err: err}}, err
		}
		return c, relay, nil, nil
	}
	return nil, "", nil, route.ErrNoNextHost
}

// aboutMessage reads every refusal as the message's fault (an enforcer
// rule that bans).
type aboutMessage struct{ StockVerdicts }

func (aboutMessage) AboutMessage(Result) bool { return true }

// TestRevMXNextDialerWalk: the recipients the first MX host put off go to
// the next one in the same attempt, once, and only them; a pace verdict
// or a reply about the message keeps them at the first host's reply.
func TestRevMXNextDialerWalk(t *testing.T) {
	for _, c := range []struct {
		name     string
		reply    *smtp.SMTPError
		verdicts Verdicts
		walk     bool
	}{
		{"greylisted", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "greylisted"}, nil, true},
		{"pace", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection."}, nil, false},
		{"about-message", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "spam"}, aboutMessage{}, false},
		{"5xx", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			mx1, mx2 := startUpstream(t), startUpstream(t)
			mx1.set("b@mx.example", c.reply)
			sp, s, _, id := setup(t, "", "a@mx.example", "b@mx.example")
			r := &mxRouter{hosts: []*upstream{mx1, mx2}}
			s.opts.Router, s.opts.Verdicts = r, c.verdicts
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := mx1.got(); !slices.Equal(got, []string{"a@mx.example"}) {
				t.Errorf("mx1 received %v; want a alone", got)
			}
			if c.walk {
				// Both sent: the message is gone.
				if _, _, err := sp.Read(id); err == nil {
					t.Errorf("message %s still queued; want delivered", id)
				}
				if len(r.tried) != 1 || !slices.Equal(r.tried[0], []string{mx1.addr}) {
					t.Errorf("DialNext asked %v; want once, with mx1 tried", r.tried)
				}
				if got := mx2.got(); !slices.Equal(got, []string{"b@mx.example"}) {
					t.Errorf("mx2 received %v; want b alone", got)
				}
				return
			}
			env, _, err := sp.Read(id)
			if err != nil {
				t.Fatal(err)
			}
			st := map[string]spool.Recipient{}
			for _, rc := range env.Recipients {
				st[rc.Addr] = rc
			}
			if a := st["a@mx.example"]; a.Status != spool.Sent || !strings.HasPrefix(a.RemoteMTA, "mx1.example[") {
				t.Errorf("a: %s at %s; want sent at mx1", a.Status, a.RemoteMTA)
			}
			if len(r.tried) != 0 || len(mx2.got()) != 0 {
				t.Errorf("DialNext asked %v, mx2 received %v; want neither", r.tried, mx2.got())
			}
			if b := st["b@mx.example"]; !strings.HasPrefix(b.RemoteMTA, "mx1.example[") || b.Status == spool.Sent {
				t.Errorf("b: %s at %s %q; want mx1's refusal", b.Status, b.RemoteMTA, b.Reply)
			}
		})
	}
}
