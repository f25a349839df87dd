package route

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// loginUser is the user name the session options log in with, "" for none.
func loginUser(t *testing.T, opts remote.Options) string {
	t.Helper()
	if opts.Auth == nil {
		return ""
	}
	c, err := opts.Auth.Client([]string{"PLAIN"})
	if err != nil {
		t.Fatal(err)
	}
	_, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(string(ir), "\x00")
	return f[1] + ":" + f[2]
}

// TestPasswordMaps: smtp_sasl_password_maps gives the relay's login as
// Postfix's smtp client finds it: by the sender first with
// smtp_sender_dependent_authentication (address, without extension,
// @domain; never the null sender), then the next hop's host, then the next
// hop as written, a port also as its service name. Senders with different
// logins get destinations of their own, and a login makes the session
// verify the server's certificate.
func TestPasswordMaps(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "sasl_passwd", `
[smtp.example.com]:587   relay-user:relay:pass
alice@a.example          alice-user:alice-pass
@a.example               a-user:a-pass
host.example             host-user:host-pass
[svc.example]:submission svc-user:svc-pass
`)
	tm := writeFile(t, dir, "transport", "h.example relay:[host.example]:2525\ns.example relay:[svc.example]:587\nn.example relay:[none.example]\n")
	for _, bySender := range []bool{false, true} {
		d, err := NewDialer(DialerOptions{PasswordMaps: []string{"hash:" + pw}, SenderDependentAuth: bySender,
			Routes: Options{RelayHost: "[smtp.example.com]:587", TransportMaps: []string{"hash:" + tm}, RecipientDelimiter: "+"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			sender, rcpt string
			key, user    string // with sender-dependent logins
			plain        string // without
		}{
			{"alice+x@a.example", "u@x.example", "smtp/[smtp.example.com]:587 login=alice@a.example", "alice-user:alice-pass", "relay-user:relay:pass"},
			{"bob@A.example", "u@x.example", "smtp/[smtp.example.com]:587 login=@a.example", "a-user:a-pass", "relay-user:relay:pass"},
			{"", "u@x.example", "smtp/[smtp.example.com]:587", "relay-user:relay:pass", "relay-user:relay:pass"},
			{"carol@c.example", "u@x.example", "smtp/[smtp.example.com]:587", "relay-user:relay:pass", "relay-user:relay:pass"},
			{"carol@c.example", "u@h.example", "relay/[host.example]:2525", "host-user:host-pass", "host-user:host-pass"},
			{"carol@c.example", "u@s.example", "relay/[svc.example]:587", "svc-user:svc-pass", "svc-user:svc-pass"},
			{"carol@c.example", "u@n.example", "relay/[none.example]", "", ""},
			{"alice@a.example", "u@n.example", "relay/[none.example] login=alice@a.example", "alice-user:alice-pass", ""},
		} {
			key, user := c.key, c.user
			if !bySender {
				key, user = strings.Split(c.key, loginMark)[0], c.plain
			}
			dst := d.Route(c.sender, c.rcpt)
			if dst.Key != key {
				t.Errorf("by sender %v: Route(%q, %q).Key = %q; want %q", bySender, c.sender, c.rcpt, dst.Key, key)
				continue
			}
			opts, err := d.session(d.seen[dst.Key])
			if err != nil {
				t.Fatal(err)
			}
			if got := loginUser(t, opts); got != user {
				t.Errorf("by sender %v: %s -> %s logs in as %q; want %q", bySender, c.sender, c.rcpt, got, user)
			}
			if user != "" && (opts.TLS != remote.TLSRequired || opts.TLSConfig == nil || opts.TLSConfig.InsecureSkipVerify) {
				t.Errorf("by sender %v: %s -> %s sends a login with TLS mode %v (config %+v); want required and verified",
					bySender, c.sender, c.rcpt, opts.TLS, opts.TLSConfig)
			}
		}
	}

	bad := writeFile(t, dir, "bad", "[x.example] only-a-user-secret\n")
	_, err := NewDialer(DialerOptions{PasswordMaps: []string{"hash:" + bad}})
	if err == nil || !strings.Contains(err.Error(), bad+":1:") || strings.Contains(err.Error(), "only-a-user-secret") {
		t.Errorf("NewDialer with a value lacking ':' = %v; want an error naming the file and line, not the value", err)
	}
}

// TestRevS14MappedLoginKeepsSmarthostTLS: a login that
// smtp_sasl_password_maps give the smarthost (forward.to) makes its
// session verify the certificate, but with the smarthost's own TLS
// settings: the name sent and verified (--client-tls-server-name), the
// name verified instead (--client-tls-verify-name), the relay's client
// certificate. Before, they were replaced by a fresh configuration for
// the next hop's host, so a smarthost reached by address, or with a
// certificate for another name, refused every message of the mapped login.
func TestRevS14MappedLoginKeepsSmarthostTLS(t *testing.T) {
	pw := writeFile(t, t.TempDir(), "sasl_passwd", "[smart.example]:587 relay-user:relay-pass\n")
	for _, s := range []remote.TLSSettings{
		{Opportunistic: true, ServerName: "smtp.smart.example"},
		{Required: true, ServerName: "smtp.smart.example"},
		{Implicit: true, ServerName: "smtp.smart.example"},
		{Opportunistic: true, ServerName: "smtp.smart.example", Verify: "<default>", VerifyName: "verify.example"},
	} {
		mode, tc, err := s.Config("smart.example:587", false)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDialer(DialerOptions{TLS: s, Session: remote.Options{TLS: mode, TLSConfig: tc},
			PasswordMaps: []string{"hash:" + pw}, Routes: Options{RelayHost: "[smart.example]:587"}})
		if err != nil {
			t.Fatal(err)
		}
		opts, err := d.session(d.seen[d.Route("a@example.org", "x@example.com").Key])
		if err != nil {
			t.Fatal(err)
		}
		if loginUser(t, opts) != "relay-user:relay-pass" {
			t.Fatalf("%+v: no mapped login", s)
		}
		tc = opts.TLSConfig
		if opts.TLS == remote.TLSNone || opts.TLS == remote.TLSOpportunistic || tc == nil ||
			tc.InsecureSkipVerify && tc.VerifyConnection == nil {
			t.Errorf("%+v: mode %v, config %+v; want TLS required and verified", s, opts.TLS, tc)
			continue
		}
		if tc.ServerName != "smtp.smart.example" || (s.VerifyName != "") != (tc.VerifyConnection != nil) {
			t.Errorf("%+v: server name %q, verify name check %v; want the smarthost's settings", s, tc.ServerName,
				tc.VerifyConnection != nil)
		}
	}
}

// TestPasswordMapsNotToMX: a sender-dependent login is never used for mail
// to a recipient domain's own MX hosts, where it would wait for good (no
// AUTH there, no certificate for the domain): the destination is the
// plain MX one, with no login.
func TestPasswordMapsNotToMX(t *testing.T) {
	pw := writeFile(t, t.TempDir(), "sasl_passwd", "@a.example a-user:a-pass\n")
	d, err := NewDialer(DialerOptions{PasswordMaps: []string{"hash:" + pw}, SenderDependentAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := d.Route("bob@a.example", "u@x.example")
	if dst.Key != "smtp/x.example" {
		t.Fatalf("Route by MX = %q; want smtp/x.example without a login", dst.Key)
	}
	opts, err := d.session(d.seen[dst.Key])
	if err != nil {
		t.Fatal(err)
	}
	if got := loginUser(t, opts); got != "" {
		t.Errorf("MX delivery logs in as %q; want no login", got)
	}
}
