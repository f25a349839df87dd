package enforce

import (
	"net/netip"
	"testing"
)

// TestGm22NotInDoc: replies Gmail sends (or sent lately) that
// gmail-replies.md does not list, as bounces and public logs quote them.
// Each gets the verdict its words call for, and one that no rule knows
// is reported: never a ban or a domain block, whatever the stage.
func TestGm22NotInDoc(t *testing.T) {
	const id = " a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp"
	rules := DefaultRules()
	for s, want := range map[string]Action{
		// Authentication, as worded before 2024 or besides the doc's.
		"550-5.7.26 This message does not pass authentication checks (SPF and DKIM both 550-5.7.26 do not pass). SPF check for [example.com] does not pass with ip: 550-5.7.26 [192.0.2.25].To best protect our users from spam, the message has 550 5.7.26 been blocked.": Encapsulate,
		"421-4.7.26 This mail has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. 421 4.7.26 Authentication results: DKIM = did not pass SPF [example.com] with ip: [192.0.2.25] = did not pass":      Encapsulate,
		"550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass, SPF = did not pass":                                                 Encapsulate,
		"421-4.7.32 This mail has been rate limited because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain.":                                                                                     Encapsulate,
		"550-5.7.1 Unauthenticated email is not accepted from this domain.":                                                                                             Encapsulate,
		"451-4.7.26 Unauthenticated email from example.com is not accepted due to domain's 451-4.7.26 DMARC policy, but temporary DNS failures prevent authentication.": None,
		// Rate and reputation, the 4.7.28 code with the older words.
		"421-4.7.28 [192.0.2.25 15] Our system has detected an unusual rate of 421-4.7.28 unsolicited mail originating from your IP address. To protect our 421-4.7.28 users from spam, mail sent from your IP address has been temporarily 421 4.7.28 rate limited.": Ban,
		"421-4.7.28 [2001:db8::25 15] Gmail has detected an unusual rate of mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.":                                                 Pace,
		"421-4.7.28 Gmail has detected an unusual rate of unsolicited email originating from your IP Netblock [2001:db8::/64 34].":                                                                                                                                    Ban,
		"550-5.7.1 [192.0.2.25 12] Gmail has detected that this message is likely suspicious due to the very low reputation of the sending IP address.":                                                                                                               Ban,
		// No origin named ("[ 15]" and no domain, or nothing at all):
		// whose rate it is cannot be told.
		"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail. To protect 421-4.7.28 our users from spam, mail has been temporarily rate limited.":                              Report,
		"421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain [ 15]. To protect our users from spam, mail has been temporarily rate limited.": Report,
		// The relay's own set-up.
		"421-4.7.0 TLS required for RCPT domain, closing connection.": Alert,
		"550-5.7.1 [192.0.2.25] The IP you're using to send mail is not authorized to send email directly to our servers. Please use the SMTP relay at your service provider instead.": Alert,
		"421-4.7.0 [2001:db8::25] This message does not meet IPv6 sending guidelines regarding PTR records and authentication.":                                                        Alert,
		"550 5.4.5 Daily user sending quota exceeded.":                                                                 Alert,
		"530-5.7.0 Authentication Required. Learn more at 530 5.7.0  https://support.google.com/mail/?p=WantAuthError": Alert,
		// The recipient, the message, the moment.
		"550-5.2.1 The email account that you tried to reach is disabled.":                                                                           None,
		"553-5.1.2 We weren't able to find the recipient domain. Please check for any spelling errors.":                                              None,
		"550-5.7.1 This message is not RFC 5322 compliant, the issue is: 'Multiple From headers found'.":                                             None,
		"454 4.7.0 Cannot authenticate due to temporary system problem. Try again later.":                                                            None,
		"450-4.2.1 The user you are trying to contact is receiving mail at a rate that 450 4.2.1 prevents additional messages from being delivered.": Pace,
		// Nobody knows: reported.
		"421-4.7.0 IP not in whitelist for RCPT domain, closing connection.":                                                                                            Report,
		"550-5.7.1 The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent. Please contact your domain administrator.": Report,
		"552-5.7.0 Our system detected an illegal attachment on your message.":                                                                                          Report,
		"550 5.7.350 Remote server returned message detected as spam":                                                                                                   Report,
		"451-4.4.2 Timeout - closing connection.":                                                                                                                       Report,
		"550-5.7.1 Message rejected due to policy associated with sender.":                                                                                              Report,
	} {
		u, err := ParseReply(s + id)
		if err != nil {
			t.Fatal(err)
		}
		if got := rules.Classify(u); got.Action != want {
			t.Errorf("Classify(%q) = %v; want %v", s, got, want)
		}
		for _, stage := range []string{"data", "rcpt", "mail", "ehlo"} {
			u.Host, u.Stage = "gmail-smtp-in.l.google.com", stage
			pl := Decide(Policy{Rules: rules, Welcome: gm22Welcome{netip.MustParseAddr("198.51.100.9")}},
				Refusal{Client: netip.MustParseAddr("198.51.100.9"), From: "a@example.com", To: []string{"b@gmail.com"}, Upstream: u})
			if pl.Action == Ban || pl.Action == BlockDomain {
				t.Errorf("Decide(%q at %s) = %v for a welcomelisted client", s, stage, pl.Action)
			}
			if want == Report && pl.Action != Report && !BeforeTransaction(stage) {
				t.Errorf("Decide(%q at %s) = %v; want report", s, stage, pl.Action)
			}
		}
	}
}
