package smtpd

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// rev28Upstream is an upstream that, after its reply to the final dot,
// misbehaves as told: a second reply at once or later, or the end of the
// session (with or without a 421) while the session is idle.
type rev28Upstream struct {
	addr  string
	after func(w func(...string), reply string, c net.Conn) // replies to a dot
	msgs  atomic.Int32
	conns atomic.Int32
}

func startRev28Upstream(t *testing.T, tlsConf *tls.Config, after func(w func(...string), reply string, c net.Conn)) *rev28Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	u := &rev28Upstream{addr: l.Addr().String(), after: after}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cork := &harness.CorkConn{Conn: c}
			c = cork
			if tlsConf != nil {
				c = tls.Server(cork, tlsConf)
			}
			u.conns.Add(1)
			go u.serve(c, cork)
		}
	}()
	return u
}

func (u *rev28Upstream) serve(c net.Conn, cork *harness.CorkConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if tc, ok := c.(*tls.Conn); ok && tc.Handshake() != nil {
		return // not corked: the handshake's flights go as they are written
	}
	// w writes each part in a write (a TLS record) of its own, and all
	// of them to the socket at once.
	var wmu sync.Mutex
	w := func(parts ...string) {
		wmu.Lock()
		defer wmu.Unlock()
		cork.Cork(true)
		for _, s := range parts {
			c.Write([]byte(s))
		}
		cork.Cork(false)
	}
	r := bufio.NewReader(c)
	w("220 up.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
		case "EHLO":
			w("250-up.test\r\n250 PIPELINING\r\n")
		case "RCPT":
			if strings.Contains(strings.ToLower(line), "refused@") {
				w("550 5.1.1 no such user\r\n")
			} else {
				w("250 2.0.0 ok rcpt\r\n")
			}
		case "MAIL", "RSET", "NOOP":
			w("250 2.0.0 ok " + strings.ToLower(cmd) + "\r\n")
		case "DATA":
			w("354 go\r\n")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			u.after(w, fmt.Sprintf("250 2.0.0 queued as Q%d\r\n", u.msgs.Add(1)), c)
		case "QUIT":
			w("221 bye\r\n")
			return
		default:
			w("502 what\r\n")
		}
	}
}

// TestRev28PoolUnaskedReplies: whatever an upstream says or does to an
// idle pooled session after its reply to the final dot (a second reply at
// once or later, a 421, the end of the connection; over TLS too), the
// next client's transaction hears its own replies: MAIL's 250, and the
// reply to its own message's dot, which the upstream got once.
func TestRev28PoolUnaskedReplies(t *testing.T) {
	cases := map[string]func(w func(...string), reply string, c net.Conn){
		"second reply at once": func(w func(...string), reply string, c net.Conn) { w(reply + "250 2.0.0 second reply\r\n") },
		// Over TLS a record of its own, which may come in the same
		// read from the socket as the first and wait in the TLS layer.
		"second reply in its own write": func(w func(...string), reply string, c net.Conn) {
			w(reply, "250 2.0.0 second reply\r\n")
		},
		"second reply later": func(w func(...string), reply string, c net.Conn) {
			w(reply)
			time.AfterFunc(50*time.Millisecond, func() { w("250 2.0.0 second reply\r\n") })
		},
		"421 while idle": func(w func(...string), reply string, c net.Conn) {
			w(reply)
			time.AfterFunc(50*time.Millisecond, func() { w("421 4.4.2 idle too long\r\n"); c.Close() })
		},
		"closed while idle": func(w func(...string), reply string, c net.Conn) {
			w(reply)
			time.AfterFunc(50*time.Millisecond, func() { c.Close() })
		},
	}
	probes := 0
	for _, useTLS := range []bool{false, true} {
		for name, after := range cases {
			t.Run(fmt.Sprintf("%s tls=%v", name, useTLS), func(t *testing.T) {
				var srvTLS *tls.Config
				opts := remote.Options{Helo: "relay.test", ResponseTimeout: 5 * time.Second}
				if useTLS {
					srvTLS = selfSigned(t)
					opts.TLS, opts.TLSConfig = remote.TLSImplicit, &tls.Config{InsecureSkipVerify: true}
				}
				up := startRev28Upstream(t, srvTLS, after)
				d := &countingDialer{d: remote.Dialer{Options: opts}}
				ts := startServer(t, func(o *Options) {
					o.Proxy = &Proxy{Addr: up.addr, Dialer: d, IdleTimeout: time.Minute}
				})
				for i := 1; i <= 3; i++ {
					c := dialClient(t, ts.addr, "client.test")
					c.expect("MAIL FROM:<a@client.test>", "250")
					c.expect("RCPT TO:<x@up.test>", "250")
					c.expect("DATA", "354")
					got := c.cmd(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n.", i))
					// Two replies read at once are no verdict (remote: a
					// 451, and the session is not pooled): the one way a
					// client may hear other than its own message's reply.
					n := up.msgs.Load()
					ambiguous := strings.HasPrefix(got, "451") && strings.Contains(got, "more than one reply to the final dot")
					if want := fmt.Sprintf("queued as Q%d", n); !ambiguous && (!strings.HasPrefix(got, "250") || !strings.Contains(got, want)) {
						t.Errorf("client %d heard %q after its dot; want 250 ... %s", i, got, want)
					}
					c.quit()
					time.Sleep(200 * time.Millisecond) // what the upstream does while idle
					probes++
				}
				if n := up.msgs.Load(); n != 3 {
					t.Errorf("the upstream got %d messages; want 3", n)
				}
			})
		}
	}
	t.Logf("%d client transactions after an upstream's unasked reply or end", probes)
}

// TestRev28TLSHeldSecondReply: an upstream reached over TLS answers the
// final dot twice, each reply a TLS record of its own, both in one write
// to the socket. The second waited in the TLS layer, which the pool's
// look at the socket did not see: the session was reused, the stale 250
// taken for MAIL's reply and every later reply for the command before's,
// so the next client heard 250 for a recipient the upstream refused (and
// its message lost that recipient without a word).
func TestRev28TLSHeldSecondReply(t *testing.T) {
	up := startRev28Upstream(t, selfSigned(t), func(w func(...string), reply string, c net.Conn) {
		w(reply, "250 2.0.0 second reply\r\n")
	})
	opts := remote.Options{Helo: "relay.test", ResponseTimeout: 5 * time.Second, TLS: remote.TLSImplicit,
		TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	d := &countingDialer{d: remote.Dialer{Options: opts}}
	ts := startServer(t, func(o *Options) { o.Proxy = &Proxy{Addr: up.addr, Dialer: d, IdleTimeout: time.Minute} })
	c := dialClient(t, ts.addr, "client.test")
	c.message("a@client.test", "x@up.test", "Subject: 1\r\n\r\none", "250")
	c.quit()
	waitIdle(t, ts, 1)

	c = dialClient(t, ts.addr, "client.test")
	c.expect("MAIL FROM:<b@client.test>", "250")
	c.expect("RCPT TO:<y@up.test>", "250")
	if got := c.cmd("RCPT TO:<refused@up.test>"); !strings.HasPrefix(got, "550") {
		t.Errorf("RCPT of a recipient the upstream refuses: the client heard %q; want the upstream's 550", got)
	}
	c.expect("DATA", "354")
	if got := c.cmd("Subject: 2\r\n\r\ntwo\r\n."); !strings.HasPrefix(got, "250") || !strings.Contains(got, "Q2") {
		t.Errorf("the client heard %q after its dot; want 250 ... Q2", got)
	}
	c.quit()
}
