package admin

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var errNoDNSBL = errors.New("no DNSBL check configured (--dnsbl)")

// TestAud6DNSBLWithoutDNSBL: on a relay without --dnsbl, "dnsbl start"
// answered OK and POST /api/dnsbl?enabled=true {"dnsbl_enabled": true},
// while status went on saying "dnsbl: disabled": nothing had been turned
// on. The relay's refusal is now the answer: an error line, 409 over HTTP.
func TestAud6DNSBLWithoutDNSBL(t *testing.T) {
	relay := &fakeRelay{noDNSBL: true}
	f := newFixture(t, Options{Relay: relay})
	f.serveText(t, nil)
	c := f.dial(t)
	for _, cmd := range []string{"dnsbl start", "dnsbl stop 60"} {
		if got, want := c.cmd(cmd), []string{"error: " + errNoDNSBL.Error()}; !cmp.Equal(got, want) {
			t.Errorf("%q replied %q; want %q", cmd, got, want)
		}
	}
	a := f.api(t)
	if code, body := a.do("POST", "/api/dnsbl?enabled=true", nil, nil); code != 409 {
		t.Errorf("POST /api/dnsbl?enabled=true = %d %s; want 409", code, body)
	}
}
