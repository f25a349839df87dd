package policy

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLo26WideNetworksWarned: mynetworks of two /1 halves (or 2000::/3,
// or ::ffff:0:0/96) trusts the whole Internet as 0.0.0.0/0 does, which is
// refused, yet the relay started without a word. A start now warns when
// the networks trusted hold more than a /8 of public IPv4 space in total,
// or a /16 of public IPv6; private networks, however many, do not count.
func TestLo26WideNetworksWarned(t *testing.T) {
	for _, tc := range []struct {
		nets []string
		warn string // in the warning; "" for none
	}{
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, "86% of the Internet"},
		{[]string{"[2000::]/3"}, "of the public IPv6 Internet"},
		{[]string{"[::ffff:0:0]/96"}, "IPv4 addresses"},
		{[]string{"8.0.0.0/7"}, "33554432 public IPv4"},
		{[]string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "[fc00::]/7", "[2001:db8::]/32"}, ""},
		{[]string{"11.0.0.0/8", "11.1.0.0/16"}, ""}, // a /8, not more
		{[]string{"[2001:db8::]/16"}, ""},
		{[]string{"0.0.0.0/5"}, "public IPv4"}, // 0/8 and 10/8 in it are not public
		{[]string{"!8.0.0.0/8", "8.0.0.0/7"}, "public IPv4"},
	} {
		var buf bytes.Buffer
		New(Options{MyNetworkSpec: tc.nets, Log: slog.New(slog.NewTextHandler(&buf, nil)),
			Relay: []string{"permit_mynetworks", "reject_unauth_destination"}})
		got := buf.String()
		if tc.warn == "" && strings.Contains(got, "mynetworks trusts") {
			t.Errorf("mynetworks %v: warned %q; want no warning", tc.nets, got)
		}
		if tc.warn != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, tc.warn) || !strings.Contains(got, "open relay")) {
			t.Errorf("mynetworks %v: log %q; want a warning saying %q", tc.nets, got, tc.warn)
		}
	}
}
