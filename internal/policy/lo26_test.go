package policy

import (
	"bytes"
	"log/slog"
	"net/netip"
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

// trustedNets is a "server none" file's trust, as auth.Secrets lists it.
type trustedNets []netip.Prefix

func (t trustedNets) Trusted(ip netip.Addr) (string, bool) {
	for _, p := range t {
		if p.Contains(ip) {
			return "lab", true
		}
	}
	return "", false
}

func (t trustedNets) TrustedNetworks() []netip.Prefix { return t }

// TestLo26WideServerNoneWarned: E-MailRelay's "server none 0.0.0.0/1"
// and "server none 128.0.0.0/1" trust every client as *.*.*.* does, which
// is refused without an address verifier, yet started without a word. It
// is warned about as a wide mynetworks is; with a verifier, which decides
// what trusted clients may send (E-MailRelay's guide), it is not.
func TestLo26WideServerNoneWarned(t *testing.T) {
	halves := trustedNets{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1")}
	for _, tc := range []struct {
		trusted  trustedNets
		verifier bool
		warn     bool
	}{
		{halves, false, true},
		{halves, true, false},
		{trustedNets{netip.MustParsePrefix("192.168.0.0/16")}, false, false},
	} {
		var buf bytes.Buffer
		opts := Options{Trusted: tc.trusted, RemoteClients: true, Log: slog.New(slog.NewTextHandler(&buf, nil)),
			Relay: []string{"permit_mynetworks", "reject_unauth_destination"}}
		if tc.verifier {
			opts.Verifier = AddressVerifier{}
		}
		New(opts)
		if got := strings.Contains(buf.String(), `\"server none\" lines trust`); got != tc.warn {
			t.Errorf("server none %v, verifier %v: log %q; want a warning: %v", tc.trusted, tc.verifier, buf.String(), tc.warn)
		}
	}
}
