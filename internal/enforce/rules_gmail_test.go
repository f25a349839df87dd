package enforce

import (
	"fmt"
	"strings"
	"testing"
)

// relayIP is the relay's own address as Gmail saw it: in Gmail's text,
// never the client to ban.
const relayIP = "192.0.2.25"

const gmailID = "a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp"

// gmailReply is one of the replies of /work/shared/gmail-replies.md (the
// texts as Gmail sends them; <relay-ip> is relayIP, <domain> example.com).
type gmailReply struct {
	code int
	enh  string
	text string // without the code prefix and the session id
	want Action
	rule string
	// domain is the Verdict's domain hint, "" for none.
	domain string
}

var gmailReplies = []gmailReply{
	// Ban the submitting client's IP.
	{550, "5.7.1", "[" + relayIP + "      12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit  https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", Ban, "gmail-unsolicited", ""},
	{550, "5.7.1", "[" + relayIP + " 19] Gmail has detected that this message is likely unsolicited mail. ...", Ban, "gmail-unsolicited", ""},
	{421, "4.7.0", "[" + relayIP + " 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.", Ban, "gmail-ip-rate", ""},
	{550, "5.7.1", "[" + relayIP + " 1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. ... has been blocked. ... ?p=UnsolicitedIPError ...", Ban, "gmail-ip-rate", ""},
	{421, "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your IP Netblock [" + relayIP + " 34]. ... temporarily rate limited. ...", Ban, "gmail-netblock-rate", ""},
	{421, "4.7.0", "[" + relayIP + " 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked. ...", Ban, "gmail-ip-reputation", ""},
	{421, "4.7.0", "[" + relayIP + " 15] Gmail has detected that this message is suspicious due to the nature of the content or the links within. ...", Ban, "gmail-suspicious-content", ""},
	{552, "5.7.0", "This message was blocked because its content presents a potential security issue. Please visit https://support.google.com/mail/?p=BlockedMessage to review our message content and attachment content guidelines.", Ban, "gmail-security-issue", ""},

	// Block the envelope sender's domain.
	{550, "5.7.1", "[" + relayIP + " 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/188131 for more information.", BlockDomain, "gmail-domain-reputation", ""},
	{550, "5.7.1", "[" + relayIP + " 19] Gmail has detected that this message is likely suspicious due to the very low reputation of the sending domain. ...", BlockDomain, "gmail-domain-reputation", ""},
	{421, "4.7.0", "[" + relayIP + " 15] Our system has detected that this message is suspicious due to the very low reputation of the sending domain. ...", BlockDomain, "gmail-domain-reputation", ""},
	{421, "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [example.com 30]. ... temporarily rate limited. ...", BlockDomain, "gmail-spf-domain-rate", "example.com"},

	// Forward encapsulated.
	{550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain if this was a legitimate mail. To learn about the DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection", Encapsulate, "gmail-dmarc", ""},
	{550, "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please visit https://support.google.com/mail/answer/81126#authentication for more information.", Encapsulate, "gmail-dmarc", ""},
	{550, "5.7.1", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/81126#authentication for more information.", Encapsulate, "gmail-authentication", ""},
	{421, "4.7.0", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/81126#authentication for more information.", Encapsulate, "gmail-authentication", ""},
	{550, "5.7.26", "This message fails to pass SPF checks for an SPF record with a hard fail policy (-all). To best protect our users from spam and phishing, the message has been blocked. ...", Encapsulate, "gmail-spf-fail", ""},
	{550, "5.7.26", "This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass SPF [example.com] with ip: [" + relayIP + "] = did not pass ...", Encapsulate, "gmail-unauthenticated-sender", ""},
	{553, "5.1.7", "The sender address <x@example.com> is not a valid RFC-5321 address. For more information, go to https://support.google.com/a/answer/3221692 and review RFC 5321 specifications.", Encapsulate, "gmail-invalid-sender-address", ""},

	// No enforcement.
	{550, "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. ... ?p=NoSuchUser", None, "gmail-no-such-user", ""},
	{452, "4.2.2", "The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp", None, "gmail-over-quota", ""},
	{552, "5.2.2", "The recipient's inbox is out of storage space and inactive. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm", None, "gmail-over-quota", ""},
	{450, "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time. ...", None, "gmail-receiving-too-quickly", ""},
	{421, "4.3.0", "Temporary System Problem.  Try again later (10).", None, "gmail-temporary-problem", ""},
	{552, "5.3.4", "Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines.", None, "gmail-message-too-big", ""},

	// Report.
	{550, "5.7.25", "[" + relayIP + "] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records. ...", Report, "gmail-no-ptr", ""},
}

// gmailLines is text as Gmail sends it: broken into lines of at most width
// characters of text, each with its "550-5.7.1 " prefix, the last with
// "550 5.7.1 " and the session id.
func gmailLines(code int, enh, text string, width int) []string {
	words := strings.Fields(text + " " + gmailID)
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	lines = append(lines, cur)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = fmt.Sprintf("%d%s%s %s", code, sep, enh, lines[i])
	}
	return lines
}

// TestClassifyGmail classifies every reply of gmail-replies.md with the
// built-in rules: on one line, and broken into lines at several widths (so
// that each phrase is split by a prefix somewhere), both as Gmail sends
// them and as Postfix joins them.
func TestClassifyGmail(t *testing.T) {
	rules := DefaultRules()
	for _, g := range gmailReplies {
		for _, width := range []int{1000, 72, 50, 31, 17} {
			lines := gmailLines(g.code, g.enh, g.text, width)
			multi := strings.Join(lines, "\r\n")
			joined := strings.Join(lines, " ")
			want := Verdict{Action: g.want, Rule: g.rule, Domain: g.domain}
			for _, form := range []struct{ name, reply string }{{"multi-line", multi}, {"joined", joined}} {
				r, err := ParseReply(form.reply)
				if err != nil {
					t.Fatalf("ParseReply(%q): %v", form.reply, err)
				}
				if r.Code != g.code || r.Enhanced != g.enh {
					t.Errorf("ParseReply(%q) = code %d, enhanced %q; want %d, %q", form.reply, r.Code, r.Enhanced, g.code, g.enh)
				}
				if got := rules.Classify(r); got != want {
					t.Errorf("Classify(%s, width %d: %q) = %v; want %v", form.name, width, form.reply, got, want)
				}
				// Given straight in Reply.Text, code and enhanced code unset.
				if got := rules.Classify(Reply{Text: form.reply}); got != want {
					t.Errorf("Classify(Reply{Text: %q}) = %v; want %v", form.reply, got, want)
				}
			}
		}
	}
}

// TestClassifyGmailVerbatim is the unsolicited-mail reply exactly as
// gmail-replies.md shows it, spacing and all.
func TestClassifyGmailVerbatim(t *testing.T) {
	const reply = "550-5.7.1 [" + relayIP + "      12] Our system has detected that this message is\n" +
		"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n" +
		"550-5.7.1 this message has been blocked. Please visit\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\n" +
		"550 5.7.1 for more information. " + gmailID + "\n"
	rules := DefaultRules()
	for _, s := range []string{reply, strings.ReplaceAll(strings.TrimSpace(reply), "\n", " ")} {
		r, err := ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		got := rules.Classify(r)
		if want := (Verdict{Action: Ban, Rule: "gmail-unsolicited"}); got != want {
			t.Errorf("Classify(%q) = %v; want %v", s, got, want)
		}
	}
	const wantNorm = "550-5.7.1 [" + relayIP + " 12] Our system has detected that this message is likely unsolicited mail. " +
		"To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit " +
		"https://support.google.com/mail/?p=UnsolicitedMessageError for more information. " + gmailID
	if got := Normalize(reply); got != wantNorm {
		t.Errorf("Normalize(%q) =\n%q; want\n%q", reply, got, wantNorm)
	}
}

// TestClassifyNotRefusals: a reply that is not a refusal is never acted
// on, even one that ends in gsmtp or says what a rule looks for.
func TestClassifyNotRefusals(t *testing.T) {
	rules := DefaultRules()
	for _, s := range []string{
		"250 2.0.0 OK  1795310619 " + gmailID,
		"250 2.1.5 OK " + gmailID,
		"250-2.0.0 likely unsolicited mail 250 2.0.0 OK " + gmailID,
		"354  Go ahead " + gmailID,
		"221 2.0.0 closing connection " + gmailID,
		"",
		"no code at all: likely unsolicited mail",
	} {
		if got := rules.Classify(Reply{Text: s}); got != (Verdict{Action: None}) {
			t.Errorf("Classify(%q) = %v; want none", s, got)
		}
	}
	if got := rules.Classify(Reply{Code: 250, Text: "likely unsolicited mail"}); got.Action != None {
		t.Errorf("Classify(250 ... likely unsolicited mail) = %v; want none", got)
	}
}

// TestClassifyUnknown: a refusal that no rule knows is reported.
func TestClassifyUnknown(t *testing.T) {
	rules := DefaultRules()
	for _, s := range []string{
		"550 5.7.1 Something Gmail has never said before " + gmailID,
		"550-5.7.1 Something new 550 5.7.1 on two lines " + gmailID,
		"451 4.3.0 Mail server temporarily rejected message. " + gmailID,
		"451 Try again",
		"554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
		"550 5.7.606 Access denied, banned sending IP [" + relayIP + "]",
	} {
		r, err := ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := rules.Classify(r); got != (Verdict{Action: Report}) {
			t.Errorf("Classify(%q) = %v; want report", s, got)
		}
	}
}
