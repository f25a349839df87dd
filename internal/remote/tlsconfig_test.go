package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSSettingsConfig(t *testing.T) {
	for _, tc := range []struct {
		s        TLSSettings
		creds    bool
		mode     TLSMode
		insecure bool
	}{
		{TLSSettings{}, false, TLSNone, true},
		{TLSSettings{Opportunistic: true}, false, TLSOpportunistic, true},
		{TLSSettings{Opportunistic: true}, true, TLSRequired, false},
		{TLSSettings{}, true, TLSRequired, false},
		{TLSSettings{Verify: "<none>"}, true, TLSRequired, true},
		{TLSSettings{Opportunistic: true, Verify: "<none>"}, true, TLSRequired, true},
		{TLSSettings{Required: true, Verify: "<none>"}, true, TLSRequired, true},
		{TLSSettings{Implicit: true, Verify: "<default>"}, false, TLSImplicit, false},
	} {
		mode, c, err := tc.s.Config("smarthost.example:587", tc.creds)
		if err != nil || mode != tc.mode || c.InsecureSkipVerify != tc.insecure || c.ServerName != "smarthost.example" {
			t.Errorf("%+v.Config(creds=%v) = %v, insecure %v, %q, %v; want %v, insecure %v, smarthost.example",
				tc.s, tc.creds, mode, c.InsecureSkipVerify, c.ServerName, err, tc.mode, tc.insecure)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	for _, tc := range []struct {
		s    TLSSettings
		want string
	}{
		{TLSSettings{Verify: "<default>"}, "without --client-tls"},
		{TLSSettings{Opportunistic: true, Verify: notPEM}, "no PEM certificates"},
		{TLSSettings{Opportunistic: true, Verify: notPEM + ".absent"}, "tls.client_verify: "}, // placed at its switch or line by config.Place
	} {
		if _, _, err := tc.s.Config("h:25", false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Config = %v; want an error containing %q", tc.s, err, tc.want)
		}
	}
}

// TestTLSSettingsLoopback: with a password and no TLS switch, a smarthost
// named as this host gets it without TLS (it crosses no network); any
// other, or one with --client-tls, only over verified TLS.
func TestTLSSettingsLoopback(t *testing.T) {
	for _, tc := range []struct {
		s        TLSSettings
		upstream string
		mode     TLSMode
	}{
		{TLSSettings{}, "127.0.0.1:25", TLSNone},
		{TLSSettings{}, "[::1]:587", TLSNone},
		{TLSSettings{}, "localhost:25", TLSRequired}, // a name: the resolver may ask DNS
		{TLSSettings{}, "127.0.0.1.example:25", TLSRequired},
		{TLSSettings{}, "192.0.2.1:25", TLSRequired},
		{TLSSettings{Opportunistic: true}, "127.0.0.1:25", TLSRequired},
	} {
		mode, _, err := tc.s.Config(tc.upstream, true)
		if err != nil || mode != tc.mode {
			t.Errorf("%+v to %s with a password: %v, %v; want %v", tc.s, tc.upstream, mode, err, tc.mode)
		}
	}
}
