package postfixlog

import (
	"strings"
	"testing"
)

// TestGM25CutAfterParenthesis: smtp(8) ends a server's reply with "(in
// reply to COMMAND)". A syslog daemon that cuts the line short of it, one
// byte short or right after a ")" in the reply, leaves a line that still
// ends in ")": ParseLine read it as a refusal with no stage, and Gmail's
// IP-rate reply at RCPT banned the client as if said after its message.
// Such a line is ParseCut's, and the whole line is read as before.
func TestGM25CutAfterParenthesis(t *testing.T) {
	const line = "Dec  7 13:00:04 mx1 postfix/smtp[2112]: 4ABCD12345: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=4.7.0, status=deferred (host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.0 [192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. 421 4.7.0 Try again later (10). x1 - gsmtp (in reply to RCPT TO command))"
	e, ok := ParseLine(line)
	if !ok || e.Stage != "rcpt" || !strings.HasSuffix(e.Reply, "- gsmtp") {
		t.Fatalf("ParseLine(whole line) = %v, stage %q, reply %q; want stage rcpt", ok, e.Stage, e.Reply)
	}
	for _, cut := range []string{line[:len(line)-1], line[:strings.Index(line, "(10)")+4]} {
		if e, ok := ParseLine(cut); ok {
			t.Errorf("ParseLine(%q) = stage %q, reply %q; want the cut line not read", cut, e.Stage, e.Reply)
		}
		e, ok := ParseCut(cut)
		if !ok || e.QueueID != "4ABCD12345" || e.To != "a@gmail.com" || e.Cut != len(cut)-len("Dec  7 13:00:04 mx1 postfix/smtp[2112]: ") {
			t.Errorf("ParseCut(%q) = %+v, %v; want the queue id, recipient and length", cut, e, ok)
		}
	}
	// A relay's greeting and login keep their stage without "(in reply to".
	for _, s := range []string{
		"Dec  7 13:00:04 mx1 postfix/smtp[2112]: 4ABCD12345: to=<a@gmail.com>, relay=smtp.gmail.com[142.250.102.108]:587, delay=1.2, delays=0.01/0/1.2/0, dsn=4.7.8, status=deferred (SASL authentication failed; server smtp.gmail.com[142.250.102.108] said: 535-5.7.8 Username and Password not accepted. x - gsmtp)",
		"Dec  7 13:00:04 mx1 postfix/smtp[2112]: 4ABCD12345: to=<a@gmail.com>, relay=mx.google.test[192.0.2.9]:25, delay=1.2, delays=0.01/0/1.2/0, dsn=4.7.0, status=deferred (host mx.google.test[192.0.2.9] refused to talk to me: 421 4.7.0 Try again later (10))",
	} {
		if e, ok := ParseLine(s); !ok || e.Stage == "" || e.Reply == "" {
			t.Errorf("ParseLine(%q) = %v, stage %q, reply %q; want it read", s, ok, e.Stage, e.Reply)
		}
	}
}
