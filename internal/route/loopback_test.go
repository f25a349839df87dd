package route

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// TestLoopbackRelayHostRouted: 677573f lets a smarthost on this host
// get the --client-auth password without TLS when no TLS switch is given.
// With routing on (a transport map, MX delivery), the relayhost's route
// goes through Dialer.session, whose "credentials and TLSNone" case turns
// the exemption back into verified TLS: every message to the local
// smarthost is deferred, as before the fix.
func TestLoopbackRelayHostRouted(t *testing.T) {
	login := relayLogin(t)
	var settings remote.TLSSettings // no TLS switch
	mode, tc, err := settings.Config("127.0.0.1:2525", true)
	if err != nil || mode != remote.TLSNone {
		t.Fatalf("unrouted: mode %v, %v; want TLSNone", mode, err)
	}
	d, err := NewDialer(DialerOptions{TLS: settings, Session: remote.Options{Auth: login, TLS: mode, TLSConfig: tc},
		Routes: Options{RelayHost: "[127.0.0.1]:2525", TransportMaps: []string{"inline:{ other.example=error:no }"}}})
	if err != nil {
		t.Fatal(err)
	}
	d.Route("", "x@example.com")
	opts, err := d.session(d.seen["smtp/[127.0.0.1]:2525"])
	if err != nil {
		t.Fatal(err)
	}
	if opts.TLS != remote.TLSNone {
		t.Errorf("routed relayhost 127.0.0.1 with --client-auth and no TLS switch: mode %v; want TLSNone as unrouted", opts.TLS)
	}
}
