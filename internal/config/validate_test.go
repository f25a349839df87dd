package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const openRelayProblem = "policy.relay_restrictions: neither it nor policy.recipient_restrictions has " +
	"reject_unauth_destination, reject or defer: anyone could relay anywhere"

func TestValidateDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v; want nil", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // nil for valid
	}{
		{"proxy with smarthost", func(c *Config) {
			c.Mode = ModeProxy
			c.Forward.To = "smarthost:25"
		}, nil},
		{"client with smarthost", func(c *Config) {
			c.Mode = ModeClient
			c.Forward.To = "smarthost:smtp"
			c.SMTP.Disabled = true
		}, nil},
		// With no smarthost, stored mail goes by MX (DeliversByMX).
		{"polling without smarthost", func(c *Config) { c.Forward.Poll = time.Hour }, nil},
		{"forward without smarthost", func(c *Config) { c.Forward.AtStartup = true }, nil},
		{"interfaces", func(c *Config) {
			c.SMTP.Interfaces = []string{"127.0.0.1", "::1", "[::1]", "0.0.0.0:2525", "[::]:2525", ":2525", "localhost", "eth0"}
		}, nil},
		{"unknown mode", func(c *Config) { c.Mode = "relay" },
			[]string{`mode: want "server", "proxy" or "client", got "relay"`}},
		{"domain with a space", func(c *Config) { c.Domain = "relay example" },
			[]string{`domain: "relay example" contains spaces or control characters`}},
		{"port too big", func(c *Config) { c.SMTP.Port = 65536 },
			[]string{"smtp.port: 65536 is out of range 1-65535"}},
		{"port zero", func(c *Config) { c.SMTP.Port = 0 },
			[]string{"smtp.port: 0 is out of range 1-65535"}},
		{"bad interfaces", func(c *Config) { c.SMTP.Interfaces = []string{"", "1.2.3.4:99999", "[zz]", "a b", "[host]:25"} },
			[]string{
				`smtp.interfaces: "": empty address`,
				`smtp.interfaces: "1.2.3.4:99999": port 99999 is out of range 1-65535`,
				`smtp.interfaces: "[zz]": not an IPv6 address`,
				`smtp.interfaces: "a b": "a b" is not an address or name`,
				`smtp.interfaces: "[host]:25": not an IPv6 address`,
			}},
		{"admin http", func(c *Config) { c.Admin.HTTP = "127.0.0.1:8025" }, nil},
		{"admin http not host:port", func(c *Config) { c.Admin.HTTP = "unix:/run/relaykeeper/admin.sock" },
			[]string{`admin.http: "unix:/run/relaykeeper/admin.sock": want HOST:PORT, e.g. 127.0.0.1:8025`}},
		{"negative size", func(c *Config) { c.SMTP.MaxMessageSize = -1 },
			[]string{"smtp.max_message_size: -1 is negative; 0 means unlimited"}},
		{"no recipients", func(c *Config) { c.SMTP.MaxRecipients = 0 },
			[]string{"smtp.max_recipients: 0 is less than 1"}},
		{"zero timeouts", func(c *Config) {
			c.SMTP.IdleTimeout = 0
			c.SMTP.TransactionTimeout = -time.Second
			c.Forward.ConnectionTimeout = 0
			c.Forward.ResponseTimeout = 0
		}, []string{
			"smtp.idle_timeout: 0s is not positive",
			"smtp.transaction_timeout: -1s is not positive",
			"forward.connection_timeout: 0s is not positive",
			"forward.response_timeout: 0s is not positive",
		}},
		{"negative grace", func(c *Config) { c.SMTP.ShutdownGrace = -time.Second },
			[]string{"smtp.shutdown_grace: -1s is negative"}},
		{"proxy without listener", func(c *Config) {
			c.Mode = ModeProxy
			c.Forward.To = "smarthost:25"
			c.SMTP.Disabled = true
		}, []string{"smtp.disabled: a proxy needs its SMTP listener"}},
		{"proxy with password maps", func(c *Config) {
			c.Mode = ModeProxy
			c.Forward.To = "smarthost:25"
			c.Auth.PasswordMaps = []string{"hash:/etc/postfix/sasl_passwd"}
		}, []string{"auth.smtp_sasl_password_maps: the proxy logs in to its smarthost with client_secrets (--client-auth), not password maps"}},
		{"proxy with routing", func(c *Config) {
			c.Mode = ModeProxy
			c.Forward.To = "smarthost:25"
			c.Routing.TransportMaps = []string{"hash:/etc/postfix/transport"}
		}, []string{"routing: the proxy hands every message to forward.to as it arrives; routing (transport_maps, transports and the rest) is for queued mail"}},
		{"client with password maps", func(c *Config) {
			c.Mode = ModeClient
			c.Forward.To = "smarthost:25"
			c.Auth.PasswordMaps = []string{"hash:/etc/postfix/sasl_passwd"}
		}, []string{"auth.smtp_sasl_password_maps: the client mode (--as-client) logs in to its smarthost with client_secrets (--client-auth), not password maps"}},
		{"no spool", func(c *Config) { c.Spool.Dir = "" },
			[]string{"spool.dir: is empty"}},
		{"proxy without smarthost", func(c *Config) { c.Mode = ModeProxy },
			[]string{"mode: proxy mode needs a smarthost: set forward.to or --forward-to"}},
		{"client without smarthost", func(c *Config) { c.Mode = ModeClient },
			[]string{"mode: client mode needs a smarthost: set forward.to or --forward-to"}},
		{"immediate without smarthost", func(c *Config) { c.Forward.Immediate = true },
			[]string{"forward.immediate: forwarding while receiving needs a smarthost: set forward.to or --forward-to"}},
		{"bad smarthost", func(c *Config) { c.Forward.To = "smarthost:nosuchservice" },
			[]string{`forward.to: "smarthost:nosuchservice": unknown port or service "nosuchservice"`}},
		{"negative poll", func(c *Config) {
			c.Forward.To = "smarthost:25"
			c.Forward.Poll = -time.Second
		}, []string{"forward.poll: -1s is negative"}},
		{"delivery", func(c *Config) {
			c.Delivery.Connections = 0
			c.Delivery.MessagesPerConnection = 0
		}, []string{
			"delivery.connections: 0 is less than 1",
			"delivery.messages_per_connection: 0 is less than 1",
		}},
		{"backoff upside down", func(c *Config) {
			c.Delivery.MinBackoff = time.Hour
			c.Delivery.MaxBackoff = time.Minute
		}, []string{"delivery.minimal_backoff_time: 1h0m0s is longer than delivery.maximal_backoff_time (1m0s)"}},
		{"zero backoff", func(c *Config) { c.Delivery.MinBackoff = 0 },
			[]string{"delivery.minimal_backoff_time: 0s is not positive"}},
		// Postfix refuses to start without a restriction that refuses
		// relaying in one of the two lists: an open relay by mistake.
		{"relay restrictions empty", func(c *Config) { c.Policy.RelayRestrictions = nil }, []string{openRelayProblem}},
		{"relay restrictions permit only", func(c *Config) {
			c.Policy.RelayRestrictions = []string{"permit_mynetworks", "warn_if_reject", "reject_unauth_destination", "permit"}
		}, []string{openRelayProblem}},
		{"relay check in recipient restrictions", func(c *Config) {
			c.Policy.RelayRestrictions = nil
			c.Policy.RecipientRestrictions = []string{"permit_mynetworks", "Reject_Unauth_Destination"}
		}, nil},
		{"relay restrictions ending in reject", func(c *Config) {
			c.Policy.RelayRestrictions = []string{"permit_mynetworks", "reject"}
		}, nil},
		// submission= requires STARTTLS (docs/policy.md), smtps= is TLS.
		{"submission without certificate", func(c *Config) { c.SMTP.Interfaces = []string{"127.0.0.1", "submission=127.0.0.1:587"} },
			[]string{"tls.server: TLS for clients needs a certificate: set tls.certificate or --server-tls-certificate"}},
		{"submission with certificate", func(c *Config) {
			c.SMTP.Interfaces = []string{"submission=127.0.0.1:587"}
			c.TLS.Certificate = "/etc/relaykeeper/cert.pem"
		}, nil},
		{"no listener, no relay check", func(c *Config) {
			c.Mode = ModeClient
			c.Forward.To = "smarthost:25"
			c.SMTP.Disabled = true
			c.Policy.RelayRestrictions = nil
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v; want nil", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate() = %v; want Problems", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestValidateOrigin checks that a problem points at the line or switch
// that set the value, and that a problem between two settings lands on
// the one the operator gave.
func TestValidateOrigin(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		change func(c *Config)
		want   string
	}{
		{
			name: "file line",
			src:  "mode = \"server\"\n[smtp]\nport = 0\n",
			want: "FILE:3: smtp.port: 0 is out of range 1-65535",
		},
		{
			name: "switch beats file",
			src:  "[smtp]\nport = 25\n",
			change: func(c *Config) {
				c.SMTP.Port = 0
				c.Origin.Switches = map[string]string{"smtp.port": "--port"}
			},
			want: "--port: 0 is out of range 1-65535",
		},
		{
			name: "maximal_backoff_time set in file",
			src:  "[delivery]\n\nmaximal_backoff_time = \"30s\"\n",
			want: "FILE:3: delivery.maximal_backoff_time: 30s is shorter than delivery.minimal_backoff_time (1m0s)",
		},
		{
			name: "proxy mode from the file",
			src:  "# relay\nmode = \"proxy\"\n",
			want: "FILE:2: mode: proxy mode needs a smarthost: set forward.to or --forward-to",
		},
		{
			name: "default value",
			src:  "",
			change: func(c *Config) {
				c.Spool.Dir = ""
			},
			want: "spool.dir: is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.src)
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(&c)
			}
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if err := c.Validate(); err == nil || err.Error() != want {
				t.Errorf("Validate() = %v; want %s", err, want)
			}
		})
	}
}

func TestResolveHostPort(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"smarthost:smtp", "smarthost:25", true},
		{"smarthost:submissions", "smarthost:465", true},
		{"host:2525", "host:2525", true},
		{"smarthost", "smarthost:25", true},
		{"192.0.2.1", "192.0.2.1:25", true},
		{"192.0.2.1:587", "192.0.2.1:587", true},
		{"[::1]:25", "[::1]:25", true},
		{"[::1]:smtp", "[::1]:25", true},
		{"[::1]", "[::1]:25", true},
		{"", "", false},
		{"::1", "", false},
		{"host:", "", false},
		{":25", "", false},
		{"host:0", "", false},
		{"host:65536", "", false},
		{"host:-1", "", false},
		{"host:nosuchservice", "", false},
		{"a b:25", "", false},
		{"[host]:25", "", false},
		{"[192.0.2.1]:25", "", false},
		{"host:25:26", "", false},
		{"user@host:25", "", false},
	}
	for _, tt := range tests {
		got, err := ResolveHostPort(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ResolveHostPort(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDeliversByMX(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   bool
	}{
		{"store only", func(c *Config) {}, false},
		{"on disconnect, no smarthost", func(c *Config) { c.Forward.OnDisconnect = true }, true},
		{"poll, no smarthost", func(c *Config) { c.Forward.Poll = time.Minute }, true},
		{"poll 0, no smarthost", func(c *Config) { c.Forward.PollSet = true }, true},
		{"smarthost", func(c *Config) { c.Forward.OnDisconnect, c.Forward.To = true, "smarthost:25" }, false},
		{"routing", func(c *Config) { c.Forward.OnDisconnect, c.Routing.DefaultTransport = true, "smtp" }, false},
		{"proxy", func(c *Config) { c.Mode, c.Forward.OnDisconnect = ModeProxy, true }, false},
	}
	for _, tt := range tests {
		c := Default()
		tt.change(&c)
		if got := c.DeliversByMX(); got != tt.want {
			t.Errorf("%s: DeliversByMX() = %v; want %v", tt.name, got, tt.want)
		}
	}
}

type testKeyed struct{ key string }

func (e testKeyed) Error() string     { return e.key + ": bad" }
func (e testKeyed) ConfigKey() string { return e.key }

// TestOriginPlace: an error naming a setting by its key gets the file and
// line where the setting is, also inside errors.Join and behind %w; a key
// set by a switch, one not in the file, and other errors are left alone.
func TestOriginPlace(t *testing.T) {
	o := Origin{File: "relaykeeper.toml", Lines: map[string]int{"policy.mynetworks": 4, "policy.client_restrictions": 7, "smtp.port": 2},
		Switches: map[string]string{"smtp.port": "--port"}}
	err := o.Place(errors.Join(
		testKeyed{"policy.mynetworks"},
		fmt.Errorf("routing: %w", testKeyed{"policy.client_restrictions"}),
		testKeyed{"smtp.port"},
		testKeyed{"policy.helo_restrictions"},
		errors.New("plain"),
	))
	want := "relaykeeper.toml:4: policy.mynetworks: bad\n" +
		"relaykeeper.toml:7: routing: policy.client_restrictions: bad\n" +
		"smtp.port: bad\npolicy.helo_restrictions: bad\nplain"
	if err.Error() != want {
		t.Errorf("Place = %q; want %q", err, want)
	}
	var k testKeyed
	if !errors.As(err, &k) {
		t.Error("Place hides the keyed error from errors.As")
	}
}

// TestRevRtForwardToBrackets: Postfix's relayhost forms, [smtp.example.com]:587
// and [IPv6:::1]:25, in --forward-to were refused with "is not an IPv6
// address", which sent a Postfix administrator looking for the wrong
// mistake; the message now says what to write.
func TestRevRtForwardToBrackets(t *testing.T) {
	for in, want := range map[string]string{
		"[smtp.example.com]:587": "as smtp.example.com:587",
		"[192.0.2.1]:25":         "as 192.0.2.1:25",
		"[IPv6:::1]:25":          "as [::1]:25",
		"[smtp.example.com]":     "as smtp.example.com:25",
	} {
		_, err := ResolveHostPort(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveHostPort(%q): %v; want an error saying %q", in, err, want)
		}
	}
}

// TestRevS14VerifyNameNeedsVerification: tls.client_verify_name is refused
// with every spelling of "no verification" (<none>, none, no), not only
// <none>: with "none" the relay started and verified nothing, the name
// asked for included.
func TestRevS14VerifyNameNeedsVerification(t *testing.T) {
	for _, v := range []string{"", "<none>", "none", "no"} {
		c := Default()
		c.Forward.To = "smarthost:25"
		c.TLS.Client = true
		c.TLS.ClientVerify = v
		c.TLS.ClientVerifyName = "verify.example"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls.client_verify_name") {
			t.Errorf("client_verify %q with client_verify_name: %v; want it refused", v, err)
		}
	}
}

// TestRevNew4PlaceSetting: a file or program a setting names that could
// not be used is placed where the setting was made: the file's line and
// key, the switch (with the line of E-MailRelay's configuration file when
// it came from one), or, for a default, the key and the switch that sets
// it.
func TestRevNew4PlaceSetting(t *testing.T) {
	o := Origin{File: "relaykeeper.toml", Lines: map[string]int{"tls.certificate": 3},
		Switches: map[string]string{"filter.server": "/etc/emailrelay.conf:4: --filter", "auth.server_secrets": "--server-auth"}}
	bad := errors.New("open x: no such file or directory")
	for key, want := range map[string]string{
		"tls.certificate":     "relaykeeper.toml:3: tls.certificate: ",
		"filter.server":       "/etc/emailrelay.conf:4: --filter: ",
		"auth.server_secrets": "--server-auth: ",
		"pop.auth":            "pop.auth (--pop-auth): ",
	} {
		err := o.Place(Setting(key, bad))
		if err.Error() != want+bad.Error() || !errors.Is(err, bad) {
			t.Errorf("Place(%s) = %q; want %q", key, err, want+bad.Error())
		}
	}
	if Setting("tls.certificate", nil) != nil {
		t.Error("Setting(key, nil) is not nil")
	}
}

// TestRevNew4TransportsAtTheirLines: a transport's next hop or bind
// address, or a fallback relay, that does not parse is reported at its
// line. It was "routing: route: transport \"x\": bind address ... is not
// an IP address", with neither the file nor the line.
func TestRevNew4TransportsAtTheirLines(t *testing.T) {
	f := filepath.Join(t.TempDir(), "relaykeeper.toml")
	os.WriteFile(f, []byte("[routing]\nsmtp_fallback_relay = [\"[x\"]\n\n[transports.out]\nhelo_name = \"relay.example\"\nnexthop = \"[smtp.example:587\"\nbind_address = \"eth0\"\n"), 0o644)
	cfg, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	for _, want := range []string{f + ":2: routing.smtp_fallback_relay: \"[x\": ", f + ":6: transports.out.nexthop: \"[smtp.example:587\": ",
		f + ":7: transports.out.bind_address: \"eth0\" is not an IP address"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v; want it to say %q", err, want)
		}
	}
}

// TestRevNew4DefaultTransportForms: default_transport as Postfix writes
// it, and as docs/postfix-migration.md says works: a transport with a
// next hop ("smtp:[smtp.example.com]:587", "out:[192.0.2.1]"), and the
// built-in error, retry and discard with or without their text. Each was
// refused with '"smtp:[...]:587" is not a transport: define
// [transports.smtp:[...]:587]', a table nobody can write; a transport
// that does not exist is still refused, and a next hop that does not
// parse too, at its line.
func TestRevNew4DefaultTransportForms(t *testing.T) {
	for _, rt := range []string{"smtp:[smtp.example.com]:587", "relay:[192.0.2.1]", "smtp:", "out:[192.0.2.1]:2525",
		"error", "error:5.7.1 no outbound mail", "retry:4.3.0 later", "discard"} {
		c := Default()
		c.Transports = map[string]Transport{"out": {}}
		c.Routing.DefaultTransport = rt
		if err := c.Validate(); err != nil {
			t.Errorf("default_transport %q: %v; want it accepted", rt, err)
		}
	}
	for rt, want := range map[string]string{"nosuch": `"nosuch" is not a transport: define [transports.nosuch]`,
		"nosuch:[192.0.2.1]": `"nosuch:[192.0.2.1]" is not a transport: define [transports.nosuch]`,
		"smtp:[192.0.2.1":    `"[192.0.2.1": missing ']'`} {
		c := Default()
		c.Routing.DefaultTransport = rt
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("default_transport %q: %v; want %q", rt, err, want)
		}
	}
}
