package route

import (
	"context"
	"errors"
	"github.com/relaykeeper/relaykeeper/test/harness"
	"os"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestDialerReload: a transport_maps entry added to the file is used after
// Reload (and found by ReloadChanged); a file that no longer parses is
// refused and the old routes stay in force.
func TestDialerReload(t *testing.T) {
	dir := t.TempDir()
	tm := writeFile(t, dir, "transport", "a.example smtp:[192.0.2.1]:2525\n")
	d, err := NewDialer(DialerOptions{Routes: Options{TransportMaps: []string{"texthash:" + tm}}, ConcurrencyLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Route("", "x@b.example").Key; got != "smtp/b.example" {
		t.Fatalf("Route(b.example) before the change = %q; want by MX", got)
	}
	if changed, err := d.ReloadChanged(); changed || err != nil {
		t.Errorf("ReloadChanged with nothing changed = %v, %v", changed, err)
	}
	time.Sleep(10 * time.Millisecond) // a new modification time
	writeFile(t, dir, "transport", "a.example smtp:[192.0.2.1]:2525\nb.example error:5.1.1 gone\n")
	if changed, err := d.ReloadChanged(); !changed || err != nil {
		t.Fatalf("ReloadChanged after the change = %v, %v; want reloaded", changed, err)
	}
	if got := d.Route("", "x@b.example"); got.Error.Code != 550 || got.Error.Enhanced != "5.1.1" {
		t.Errorf("Route(b.example) after the reload = %+v; want the error: route, 550 5.1.1", got)
	}
	writeFile(t, dir, "transport", "b.example nosuch:\n")
	if err := d.Reload(); err == nil {
		t.Errorf("Reload of a table naming an unknown transport succeeded")
	}
	if got := d.Route("", "x@b.example"); got.Error.Code != 550 {
		t.Errorf("after a refused reload Route(b.example) = %+v; want the old route kept", got)
	}
}

// TestDialerCredentialsVerify: a transport that logs in verifies the
// server's certificate even at the levels that only encrypt, unless the
// administrator opted out.
func TestDialerCredentialsVerify(t *testing.T) {
	dir := t.TempDir()
	sec := writeFile(t, dir, "secrets", "client plain user pass\n")
	os.Chmod(sec, 0o600)
	for _, c := range []struct {
		level    string
		auth     string
		insecure bool
		mode     remote.TLSMode
		verify   bool
	}{
		{"may", "", false, remote.TLSOpportunistic, false},
		{"may", sec, false, remote.TLSRequired, true},
		{"encrypt", sec, false, remote.TLSRequired, true},
		{"encrypt", sec, true, remote.TLSRequired, false},
		{"wrapper", sec, false, remote.TLSImplicit, true},
		{"verify", "", false, remote.TLSRequired, true},
		{"", sec, false, remote.TLSRequired, true},
		// The opt-out from verification is not one from encryption.
		{"may", sec, true, remote.TLSRequired, false},
		// tls = none with a login: Postfix's default noplaintext
		// sends no password without TLS either.
		{"none", sec, false, remote.TLSRequired, true},
		{"none", sec, true, remote.TLSRequired, false},
		{"", sec, true, remote.TLSRequired, false},
	} {
		d, err := NewDialer(DialerOptions{InsecureAuth: c.insecure, Routes: Options{
			Transports: map[string]*Transport{"out": {TLS: c.level, Auth: c.auth}}, DefaultTransport: "out:[192.0.2.1]:587"}})
		if err != nil {
			t.Fatal(err)
		}
		d.Route("", "x@example.com")
		opts, err := d.session(d.seen["out/[192.0.2.1]:587"])
		if err != nil {
			t.Fatal(err)
		}
		if opts.TLS != c.mode || opts.TLSConfig == nil || opts.TLSConfig.InsecureSkipVerify == c.verify {
			t.Errorf("level %s auth %v insecure %v: mode %v verify %v; want %v, verify %v", c.level, c.auth != "", c.insecure,
				opts.TLS, opts.TLSConfig != nil && !opts.TLSConfig.InsecureSkipVerify, c.mode, c.verify)
		}
		if opts.TLSConfig.ServerName != "192.0.2.1" {
			t.Errorf("server name %q; want the next hop's", opts.TLSConfig.ServerName)
		}
	}
}

// TestDNSFailureLocal: a next hop that cannot exist fails with the relay's
// own reply (Local): no upstream said it, so it is never blamed on one.
func TestDNSFailureLocal(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	d, err := NewDialer(DialerOptions{Resolver: &Resolver{Server: s.Addr(), Timeout: time.Second}, ConcurrencyLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Dial(context.Background(), d.Route("", "x@nosuch.example"))
	var re *remote.Error
	if !errors.As(err, &re) || !re.Perm || re.Reply.Code != 550 || !re.Reply.Local {
		t.Fatalf("Dial(nosuch.example) = %v; want a permanent 550 made by the relay (Local)", err)
	}
}

// relayLogin loads a secrets file holding the relay's own client login
// (user, pass) and returns that login.
func relayLogin(t *testing.T) *auth.ClientLogin {
	t.Helper()
	sec := writeFile(t, t.TempDir(), "secrets", "client plain user pass\n")
	os.Chmod(sec, 0o600)
	s, err := auth.LoadSecrets(sec)
	if err != nil {
		t.Fatal(err)
	}
	login, _ := s.ClientAuth("")
	return login
}

// TestDialerRelayCredentialsStay: the relay's own credentials (the
// smarthost's, Session.Auth) go to the relayhost only; a transport's other
// next hop gets the relay's TLS switches without them, named for itself.
func TestDialerRelayCredentialsStay(t *testing.T) {
	login := relayLogin(t)
	settings := remote.TLSSettings{Opportunistic: true, ServerName: "smtp.smart.example"}
	mode, tc, err := settings.Config("smart.example:587", true)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer(DialerOptions{TLS: settings, Session: remote.Options{Auth: login, TLS: mode, TLSConfig: tc},
		Routes: Options{RelayHost: "[smart.example]:587", Transports: map[string]*Transport{"other": {NextHop: "[192.0.2.9]"}},
			TransportMaps: []string{"inline:{ other.example=other: }"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rcpt, key string
		auth      bool
		mode      remote.TLSMode
		name      string
	}{
		{"x@example.com", "smtp/[smart.example]:587", true, remote.TLSRequired, "smtp.smart.example"},
		{"x@other.example", "other/[192.0.2.9]", false, remote.TLSOpportunistic, "192.0.2.9"},
	} {
		d.Route("", c.rcpt)
		opts, err := d.session(d.seen[c.key])
		if err != nil {
			t.Fatalf("%s: %v", c.rcpt, err)
		}
		// The relay's own login itself, or none at all (a typed nil in
		// the interface would pass a != nil check).
		var want remote.Authenticator
		if c.auth {
			want = login
		}
		if opts.Auth != want || opts.TLS != c.mode || opts.TLSConfig.ServerName != c.name {
			t.Errorf("%s: auth %v, mode %v, name %q; want auth %v, mode %v, name %q", c.rcpt, opts.Auth, opts.TLS,
				opts.TLSConfig.ServerName, want, c.mode, c.name)
		}
	}
}

// TestRevMXDialNextNotMX: a next hop not looked up by MX (the smarthost,
// a bracketed transport next hop) has no next host: DialNext says so at
// once, without dialling anything, so that a 4xx from it defers as before.
func TestRevMXDialNextNotMX(t *testing.T) {
	for _, routes := range []Options{
		{RelayHost: "[127.0.0.1]:1"},
		{Transports: map[string]*Transport{"out": {}}, DefaultTransport: "out:[127.0.0.1]:1"},
	} {
		d, err := NewDialer(DialerOptions{Routes: routes})
		if err != nil {
			t.Fatal(err)
		}
		dst := d.Route("", "x@example.com")
		conn, _, addrs, err := d.DialNext(context.Background(), dst, []string{"127.0.0.1:1"})
		if conn != nil || len(addrs) != 0 || !errors.Is(err, ErrNoNextHost) {
			t.Errorf("%+v: DialNext = %v, %v, %v; want ErrNoNextHost and nothing tried", routes, conn, addrs, err)
		}
	}
}
