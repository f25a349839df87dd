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

// TestGm22CompanionAlertCause: an alert is given once per cause per hour,
// the cause being the rule for Gmail's own refusals, and the rule again
// for the others (docs/enforce.md, step 7). postfix-enforcer counted by
// the rule alone: a client that mails a server of its own answering in
// Gmail's words ("no PTR record ... - gsmtp", which postfix-enforcer reads
// as Gmail's), or a Workspace administrator's rule in them (gcdp), used up
// the hour's alert, and Gmail's real one about the relay's PTR record was
// never told.
func TestGm22CompanionAlertCause(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	const gmailMX = "gmail-smtp-in.l.google.com[142.250.102.27]"
	log := strings.ReplaceAll(message("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@attacker.example", "m-1@x", fmt.Sprintf(noPTR, "s1")),
		gmailMX, "mx.attacker.example[198.51.100.50]") +
		message("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@workspace.example", "m-2@x", fmt.Sprintf(noPTR, "- gcdp s2")) +
		message("4A0003ABC3", "203.0.113.3", "c@three.example", "u3@gmail.test", "m-3@x", fmt.Sprintf(noPTR, "s3")) +
		message("4A0004ABC4", "203.0.113.4", "d@four.example", "u4@gmail.test", "m-4@x", fmt.Sprintf(noPTR, "s4"))
	got := runLog(t, c, &out, log)
	want := []string{
		"would-alert 4A0001ABC1 203.0.113.1 ",
		"would-alert 4A0003ABC3 203.0.113.3 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
