package smtpd

import (
	"strings"
	"testing"
)

// TestParserRefusalsAreLogged: a MAIL or RCPT that go-smtp's own parser
// refuses (a path without brackets, a SIZE that is not a number, a bad
// NOTIFY) never reaches the session, which logs its refusals; the command
// layer logs it instead, so that the mail log (and fail2ban, the metrics
// and the admin's notify stream, which follow it) sees every refusal.
func TestParserRefusalsAreLogged(t *testing.T) {
	ts := startServer(t, nil)
	lines := dialog(t, ts.addr, "EHLO client.test\r\n"+
		"MAIL FROM:bad\r\n"+
		"MAIL FROM:<a@example.com> SIZE=x\r\n"+
		"MAIL FROM:<a@example.com>\r\n"+
		"RCPT TO:bad\r\n"+
		"RCPT TO:<b@example.net> NOTIFY=BOGUS\r\n"+
		"RCPT TO:<b@example.net>\r\n"+
		"QUIT\r\n")
	var refused []string
	for _, l := range lines {
		if l[0] == '4' || l[0] == '5' {
			refused = append(refused, l)
		}
	}
	if len(refused) != 4 {
		t.Fatalf("dialog = %q; want 4 refusals", lines)
	}
	log := ts.log.String()
	for _, r := range refused {
		if !strings.Contains(log, `reply="`+r+`"`) {
			t.Errorf("refusal %q is not in the mail log:\n%s", r, log)
		}
	}
	if n := strings.Count(log, " reject "); n != 4 {
		t.Errorf("mail log has %d reject lines; want 4:\n%s", n, log)
	}
}
