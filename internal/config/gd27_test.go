package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gd27Load loads src as a configuration file.
func gd27Load(t *testing.T, src string) (Config, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) = %v", src, err)
	}
	return c, path
}

// TestGd27TrustedUpstreams: enforce.trusted_upstreams was never checked,
// so an entry no upstream can match (a wildcard, two hosts in one, a bad
// port) was taken silently, and Gmail-worded refusals from the host meant
// were only ever reported. Every bad entry is reported, FILE:LINE.
func TestGd27TrustedUpstreams(t *testing.T) {
	good := []string{"mx.example.com", "mx.example.com.", "192.0.2.7", "2001:db8::1", "mx.example.com:25", "[192.0.2.7]",
		"[2001:db8::1]:587", "mx.example.com[192.0.2.7]", "smtp_relay.example"}
	for _, u := range good {
		if why := upstreamProblem(u); why != "" {
			t.Errorf("upstreamProblem(%q) = %q; want none", u, why)
		}
	}
	bad := []string{"", " ", "*.google.com", "mx1.example.com mx2.example.com", "mx.example.com:0", "mx.example.com:smtpx",
		"[mx.example.com]", "mx..example.com", "mx.example.com[192.0.2.7]x", "exa!mple.com", "[192.0.2.7]:99999"}
	for _, u := range bad {
		if why := upstreamProblem(u); why == "" {
			t.Errorf("upstreamProblem(%q) = none; want a problem", u)
		}
	}
	c, path := gd27Load(t, "[enforce]\ntrusted_upstreams = [\"*.example.com\", \"mx.example.com\"]\n")
	want := path + ":2: enforce.trusted_upstreams: \"*.example.com\": no wildcards"
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Validate() = %v; want %s...", err, want)
	}
}

// TestGd27MilterEveryAddress: a milter address is checked in Validate,
// every one of them, with its host (a space in it was taken).
func TestGd27MilterEveryAddress(t *testing.T) {
	c, path := gd27Load(t, "[milter]\nserver = [\"inet:8891@exa mple\", \"unix:/run/x.sock\", \"bogus:/x\"]\n")
	err := c.Validate()
	for _, a := range []string{"inet:8891@exa mple", "bogus:/x"} {
		if err == nil || !strings.Contains(err.Error(), path+":2: milter.server: \""+a+"\": milter: bad address") {
			t.Errorf("Validate() = %v; want %q reported", err, a)
		}
	}
}

// TestGd27IdleSettings: a setting the mode never uses is warned of, where
// it was set.
func TestGd27IdleSettings(t *testing.T) {
	c, path := gd27Load(t, "mode = \"server\"\n[enforce]\nban_time = \"1h\"\ndisabled = false\n")
	c.Origin.Switches = map[string]string{"enforce.welcomelist": "--welcomelist"}
	got := strings.Join(c.IdleSettings(), "\n")
	for _, want := range []string{path + ":3: enforce.ban_time: does nothing", "--welcomelist: does nothing"} {
		if !strings.Contains(got, want) {
			t.Errorf("IdleSettings() = %q; want %q", got, want)
		}
	}
	if strings.Contains(got, "enforce.disabled") {
		t.Errorf("IdleSettings() = %q; enforce.disabled is no idle setting", got)
	}
	c.Forward.To = "smarthost.example:25"
	if got := c.IdleSettings(); len(got) != 0 {
		t.Errorf("forwarding: IdleSettings() = %q; want none", got)
	}
	c, path = gd27Load(t, "mode = \"client\"\n[forward]\nto = \"127.0.0.1:9\"\n[filter]\nserver = [\"exit:0\"]\n")
	if got := strings.Join(c.IdleSettings(), "\n"); !strings.Contains(got, path+":5: filter.server: does nothing: a client run") {
		t.Errorf("client: IdleSettings() = %q; want filter.server idle", got)
	}
}
