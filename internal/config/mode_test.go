package config

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestForwardsAndDescribe(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		set                   func(c *Config)
		forwarding, triggered bool
		scheduling            bool
		describe              string
	}{
		{"store only", func(c *Config) {}, false, false, false, "store"},
		{"smarthost, no trigger", func(c *Config) { c.Forward.To = "mx:25" }, true, false, false, "store"},
		{"smarthost, polled", func(c *Config) { c.Forward.To = "mx:25"; c.Forward.Poll = time.Minute }, true, true, true, "store and forward to 192.0.2.1:25"},
		{"by MX", func(c *Config) { c.Forward.AtStartup = true }, true, true, true, "store and forward to each recipient's domain by MX"},
		{"routed", func(c *Config) { c.Routing.DefaultTransport = "smtp:x"; c.Forward.OnDisconnect = true }, true, true, true, "store and forward by routing"},
		{"proxy", func(c *Config) { c.Mode = ModeProxy; c.Forward.To = "mx:25" }, false, false, false, "proxy to 192.0.2.1:25"},
		{"immediate", func(c *Config) { c.Forward.To = "mx:25"; c.Forward.Immediate = true; c.Forward.Poll = time.Minute }, false, false, false, "proxy to 192.0.2.1:25"},
	} {
		c := Default()
		tc.set(&c)
		f, tr := c.Forwards()
		if f != tc.forwarding || tr != tc.triggered {
			t.Errorf("%s: Forwards() = %v, %v; want %v, %v", tc.name, f, tr, tc.forwarding, tc.triggered)
		}
		if got := c.Describe("192.0.2.1:25", tc.scheduling); got != tc.describe {
			t.Errorf("%s: Describe = %q; want %q", tc.name, got, tc.describe)
		}
	}
}

func TestLevel(t *testing.T) {
	c := Default()
	if got := c.Level(); got != slog.LevelWarn {
		t.Errorf("Level() by default = %v; want WARN", got)
	}
	c.Mode = ModeClient
	if got := c.Level(); got != slog.LevelInfo {
		t.Errorf("Level() with --as-client = %v; want INFO", got)
	}
	c.Log.Verbose = true
	if got := c.Level(); got != slog.LevelDebug {
		t.Errorf("Level() with --verbose = %v; want DEBUG", got)
	}
}

func TestTrustsSecretsFileAndMailRestrictions(t *testing.T) {
	c := Default()
	if c.TrustsSecretsFile() {
		t.Error("TrustsSecretsFile() without --server-auth = true")
	}
	c.Auth.ServerSecrets = "/etc/relaykeeper.auth"
	if !c.TrustsSecretsFile() {
		t.Error("TrustsSecretsFile() with --server-auth = false")
	}
	c.Origin.Lines = map[string]int{"policy.mynetworks": 3}
	if c.TrustsSecretsFile() {
		t.Error("TrustsSecretsFile() with policy.mynetworks in the file = true")
	}
	c.Enforce.SenderAccess = "/var/lib/x/blocked"
	if got := c.MailRestrictions(); len(got) != 1 || got[0] != "check_sender_access texthash:/var/lib/x/blocked" {
		t.Errorf("MailRestrictions() = %q", got)
	}
	c.Enforce.Disabled = true
	if got := c.MailRestrictions(); got != nil {
		t.Errorf("MailRestrictions() with enforcement off = %q; want none", got)
	}
}

// TestNeverBlock: the relay's own domains join never_block: Gmail may name
// any of them as the domain at fault (the SRS domain as the SPF domain of
// forwarded mail, the DKIM domain of its encapsulated copies).
func TestNeverBlock(t *testing.T) {
	c := Default()
	c.Domain = "relay.example"
	c.Enforce.NeverBlock = []string{"gmail.com"}
	c.Policy.RelayDomains = []string{"relayed.example"}
	c.SRS.SecretFile, c.SRS.Domain = "/etc/postsrsd.secret", "srs.example"
	c.Enforce.RelayAddress = "Relay <enforcer@notices.example>"
	c.DKIM.Domain = "sign.example"
	c.Rewrite.Myorigin = "office.example"
	got := c.NeverBlock()
	want := []string{"gmail.com", "relay.example", "relayed.example", "srs.example", "notices.example", "sign.example", "office.example"}
	if !slices.Equal(got, want) {
		t.Errorf("NeverBlock() = %q; want %q", got, want)
	}
}

// TestMyoriginValidated: [rewrite] myorigin is a domain; Postfix's
// variables, an address or an address literal are refused under its key.
func TestMyoriginValidated(t *testing.T) {
	for _, o := range []string{"$myhostname", "scans@example.com", "[192.0.2.1]", "exa mple.com"} {
		c := Default()
		c.Rewrite.Myorigin = o
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rewrite.myorigin") {
			t.Errorf("myorigin %q: %v; want it refused under rewrite.myorigin", o, err)
		}
	}
	c := Default()
	c.Rewrite.Myorigin = "office.example"
	if err := c.Validate(); err != nil {
		t.Errorf("myorigin office.example: %v", err)
	}
}
