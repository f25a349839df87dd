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

// TestAud6SMTPEnableWithoutSMTP: on a relay that serves no SMTP (--pop
// --no-smtp), "smtp enable" answered OK and POST /api/smtp?enabled=true
// {"smtp_enabled": true}, while status kept saying "smtp: disabled" and
// nothing listened. The answer now says there is no SMTP listener.
func TestAud6SMTPEnableWithoutSMTP(t *testing.T) {
	relay := &fakeRelay{noSMTP: true}
	f := newFixture(t, Options{Relay: relay})
	f.serveText(t, nil)
	c := f.dial(t)
	if got, want := c.cmd("smtp enable"), []string{"error: " + errNoSMTP.Error()}; !cmp.Equal(got, want) {
		t.Errorf("smtp enable replied %q; want %q", got, want)
	}
	if got, want := c.cmd("smtp disable"), []string{"OK"}; !cmp.Equal(got, want) {
		t.Errorf("smtp disable replied %q; want %q", got, want)
	}
	if code, body := f.api(t).do("POST", "/api/smtp?enabled=true", nil, nil); code != 409 {
		t.Errorf("POST /api/smtp?enabled=true = %d %s; want 409", code, body)
	}
}
