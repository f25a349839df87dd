package route

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud4RelayHostNotFoundDefers: with routing configured, a relayhost
// (--forward-to) whose name does not resolve bounced every message at
// once with 5.1.2 (and its notice, and the double bounce): a typo in the
// configuration, or a name gone from DNS for a moment, destroyed the
// queue. Postfix's smtp client calls it a "relayhost configuration
// problem" and defers (4.3.5); without routing relaykeeper deferred too.
// A transport's own bracketed next hop still bounces, as in Postfix.
func TestAud4RelayHostNotFoundDefers(t *testing.T) {
	s := harness.StartDNS(t, testZone)
	d, err := NewDialer(DialerOptions{Resolver: &Resolver{Server: s.Addr(), Timeout: time.Second}, ConcurrencyLimit: 20,
		Routes: Options{RelayHost: "[nosuch.example]:25", TransportMaps: []string{"inline:{ t.example=relay:[nosuch.example] }"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = d.Dial(context.Background(), d.Route("a@example.org", "x@example.net"))
	var re *remote.Error
	if !errors.As(err, &re) || re.Perm || re.AsReply().Enhanced != "4.3.5" {
		t.Errorf("relayhost that does not resolve: %v; want a deferral, 4.3.5 configuration problem", err)
	}
	_, _, err = d.Dial(context.Background(), d.Route("a@example.org", "x@t.example"))
	if !errors.As(err, &re) || !re.Perm {
		t.Errorf("transport next hop that does not resolve: %v; want permanent, as Postfix", err)
	}
}
