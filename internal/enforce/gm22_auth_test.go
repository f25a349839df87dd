package enforce

import (
	"net/netip"
	"testing"
)

// TestGm22AuthRequired: smtp.gmail.com answers MAIL FROM with "530-5.7.0
// Authentication Required" (older "530-5.5.1") when the relay has not
// logged in: its own set-up (no credentials, a secrets file it cannot
// read), as "Username and Password not accepted" is. No rule knew it, so
// it was reported and the 530 bounced every queued message of every
// client; it is an alert now, and the mail stays queued. Another server's
// 530 (Exchange's "Client was not authenticated" for a recipient of its
// own) is not Gmail's and stays a report.
func TestGm22AuthRequired(t *testing.T) {
	rules := DefaultRules()
	for _, s := range []string{
		"530-5.7.0 Authentication Required. Learn more at\r\n530 5.7.0  https://support.google.com/mail/?p=WantAuthError y18-20020a92d0d2000000b002f685e47b47sm428291ila.54 - gsmtp",
		"530-5.5.1 Authentication Required. Learn more at 530 5.5.1  https://support.google.com/mail/?p=WantAuthError x2sm123 - gsmtp",
		"530 5.7.0 authentication required x3sm1 - gsmtp",
	} {
		u, err := ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		u.Host, u.Stage = "smtp.gmail.com", "mail"
		if got := rules.Classify(u); got != (Verdict{Action: Alert, Rule: "gmail-auth-required"}) {
			t.Errorf("Classify(%q) = %v; want alert (rule gmail-auth-required)", s, got)
		}
		pl := Decide(Policy{Rules: rules}, Refusal{Client: netip.MustParseAddr("203.0.113.4"), From: "a@example.com", To: []string{"b@gmail.com"}, Upstream: u})
		if pl.Action != Alert || pl.Heard.Code != 451 {
			t.Errorf("Decide(%q) = %v, heard %v; want alert, the mail kept (451)", s, pl.Action, pl.Heard)
		}
	}
	for _, s := range []string{
		"530 5.7.1 Client was not authenticated",
		"530 Authentication required",
	} {
		if got := rules.Classify(upstream(s)); got.Action != Report {
			t.Errorf("Classify(%q) = %v; want report: not Gmail's", s, got)
		}
	}
}
