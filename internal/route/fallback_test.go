package route

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// closedHop is a bracketed next hop on 127.0.0.1 where nothing listens.
func closedHop(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "[" + strings.Replace(addr, ":", "]:", 1)
}

// TestFallbackRelay: smtp_fallback_relay takes what the destination's own
// hosts could not: a smarthost that cannot be reached, at the first dial
// and at DialNext (after a 4xx); never for the relay transport; a bad
// fallback next hop is refused at start.
func TestFallbackRelay(t *testing.T) {
	fb := harness.NewFakeSMTP(t, harness.Script{})
	fbHop := "[" + strings.Replace(fb.Addr(), ":", "]:", 1)
	down := closedHop(t)
	d, err := NewDialer(DialerOptions{FallbackRelays: []string{closedHop(t), fbHop},
		Session: remote.Options{Helo: "relay.test"},
		Routes:  Options{RelayHost: down, TransportMaps: []string{"inline:{ r.example=relay:" + down + " }"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	dst := d.Route("a@example.org", "u@x.example")
	conn, relay, _, err := d.DialHosts(ctx, dst)
	if err != nil {
		t.Fatalf("relayhost down: %v; want the fallback relay", err)
	}
	if conn.Addr() != fb.Addr() || relay != "127.0.0.1["+fb.Addr()+"]" {
		t.Errorf("reached %s as %q; want the fallback %s", conn.Addr(), relay, fb.Addr())
	}
	conn.Quit()

	next, _, _, err := d.DialNext(ctx, dst, []string{strings.Trim(strings.Replace(down, "]:", ":", 1), "[")})
	if err != nil || next.Addr() != fb.Addr() {
		t.Fatalf("DialNext after the smarthost put mail off: %v, %v; want the fallback", next, err)
	}
	next.Quit()
	if _, _, _, err := d.DialNext(ctx, dst, []string{fb.Addr()}); err == nil {
		t.Errorf("DialNext with the fallback tried already succeeded; want no host left")
	}

	if _, _, err := d.Dial(ctx, d.Route("a@example.org", "u@r.example")); err == nil {
		t.Errorf("the relay transport fell back; Postfix's stock master.cf turns the fallback off there")
	}

	if _, err := NewDialer(DialerOptions{FallbackRelays: []string{"[unterminated"}}); err == nil ||
		!strings.Contains(err.Error(), "smtp_fallback_relay") {
		t.Errorf("NewDialer with a bad fallback relay: %v", err)
	}
}

// TestFallbackNotAroundRefusal: a smarthost that answers and refuses the
// session (Gmail's 421 rate limit at the greeting) is not sent around:
// its reply stands for the enforcer, the fallback relay gets nothing.
func TestFallbackNotAroundRefusal(t *testing.T) {
	fb := harness.NewFakeSMTP(t, harness.Script{})
	refusing := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{
		Reply: "421 4.7.0 Try again later, closing connection. - gsmtp"}})
	d, err := NewDialer(DialerOptions{FallbackRelays: []string{"[" + strings.Replace(fb.Addr(), ":", "]:", 1)},
		Session: remote.Options{Helo: "relay.test"},
		Routes:  Options{RelayHost: "[" + strings.Replace(refusing.Addr(), ":", "]:", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if c, _, err := d.Dial(context.Background(), d.Route("a@example.org", "u@x.example")); err == nil {
		c.Quit()
		t.Fatalf("reached %s; want the refusal to stand", c.Addr())
	}
	if n := fb.Connections(); n != 0 {
		t.Errorf("the fallback relay got %d connections; want none", n)
	}
}

// TestRevS14FallbackKeepsTransportLogin: a transport's own login (its auth
// secrets file, meant for its next hop) never goes to a fallback relay,
// which is another server, maybe another operator's; the fallback gets
// only what smtp_sasl_password_maps give its next hop or the sender.
func TestRevS14FallbackKeepsTransportLogin(t *testing.T) {
	dir := t.TempDir()
	sec := writeFile(t, dir, "secrets", "client plain gmail-user app-password\n")
	os.Chmod(sec, 0o600)
	pw := writeFile(t, dir, "sasl_passwd", "[backup.example]:2525 backup-user:backup-pass\n")
	fbs := []string{"[other.example]:2525", "[backup.example]:2525"}
	d, err := NewDialer(DialerOptions{FallbackRelays: fbs, PasswordMaps: []string{"hash:" + pw},
		Session: remote.Options{Helo: "relay.test"},
		Routes: Options{Transports: map[string]*Transport{"gmail": {NextHop: "[smtp.gmail.com]:587", Auth: sec}},
			DefaultTransport: "gmail"}})
	if err != nil {
		t.Fatal(err)
	}
	rt := d.seen[d.Route("a@example.org", "u@x.example").Key]
	if opts, err := d.session(rt); err != nil || loginUser(t, opts) != "gmail-user:app-password" {
		t.Fatalf("the transport's own next hop: %v, login %q; want the transport's", err, loginUser(t, opts))
	}
	for i, want := range []string{"", "backup-user:backup-pass"} {
		opts, err := d.session(fallbackRoute(rt, d.fallback[i]))
		if err != nil {
			t.Fatal(err)
		}
		if got := loginUser(t, opts); got != want {
			t.Errorf("fallback relay %s logs in as %q; want %q", fbs[i], got, want)
		}
	}
}
