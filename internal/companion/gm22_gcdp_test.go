package companion

import (
	"fmt"
	"strings"
	"testing"
)

// TestGm22CompanionAdminRule: a Workspace administrator's rule refusing
// the mail in Gmail's words ("- gcdp <session> - gsmtp", from Google's
// MX) bans nobody and blocks no domain in postfix-enforcer either.
func TestGm22CompanionAdminRule(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	const spam = "550-5.7.1 Our system has detected that this message is likely unsolicited mail. 550 5.7.1 - gcdp %s - gsmtp"
	const domain = "550-5.7.1 This message is likely suspicious due to the very low reputation of the sending domain. - gcdp 550 5.7.1 %s - gsmtp"
	log := message("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@workspace.example", "m-1@x", fmt.Sprintf(spam, "s1")) +
		message("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@workspace.example", "m-2@x", fmt.Sprintf(domain, "s2")) +
		message("4A0003ABC3", "203.0.113.3", "c@three.example", "u3@gmail.test", "m-3@x", fmt.Sprintf(unsolicited, "s3"))
	got := runLog(t, c, &out, log)
	want := []string{
		`would-report 4A0001ABC1 203.0.113.1 the reply is a rule of the recipient domain's administrator (Google's "gcdp"), not Gmail's verdict; not acted on`,
		`would-report 4A0002ABC2 203.0.113.2 the reply is a rule of the recipient domain's administrator (Google's "gcdp"), not Gmail's verdict; not acted on`,
		"would-ban 4A0003ABC3 203.0.113.3 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
