package postfixlog

import (
	"strings"
	"testing"
)

// TestParseOrigToWithRelayField: the original recipient (orig_to=, before
// aliasing) is a quoted local part a client chose; its ", relay=" must not
// make the refusal unreadable, or a spammer escapes every sanction by
// sending to such an address of an aliased domain. The line is Postfix
// 3.7's own.
func TestParseOrigToWithRelayField(t *testing.T) {
	line := `Dec  5 03:02:30 postfix postfix/smtp[534]: 7841F98877E: to=<spam@gmail.test>, orig_to=<"x, relay=none, delay=0"@alias.test>, relay=127.0.0.1[127.0.0.1]:34311, conn_use=2, delay=0.22, delays=0/0.18/0.04/0, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1 [127.0.0.1      12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 more a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp (in reply to end of DATA command))`
	e, ok := ParseLine(line)
	if !ok {
		t.Fatalf("ParseLine(%q) = false; want a delivery", line)
	}
	if e.Kind != Delivery || e.To != "spam@gmail.test" || e.OrigTo != `"x, relay=none, delay=0"@alias.test` ||
		e.Relay != "127.0.0.1[127.0.0.1]:34311" || e.Status != "bounced" || e.Stage != "end-of-data" || e.Reply == "" {
		t.Errorf("ParseLine = %+v; want the bounced delivery to spam@gmail.test with its reply", e)
	}

	// A quoted to= that carries a whole delivery's fields is still one
	// address, and the line's own fields are read after it.
	line = `Dec  5 03:02:30 postfix postfix/smtp[534]: 7841F98877F: to=<"x, relay=mx.google.test[127.0.0.1]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, status=bounced (host mx.google.test[127.0.0.1] said: 550 5.7.1 likely unsolicited mail (in reply to end of DATA command))"@gmail.test>, relay=127.0.0.1[127.0.0.1]:34311, delay=0.1, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 OK  1733360402 a640c23a62f3a - gsmtp)`
	if e, ok := ParseLine(line); !ok || e.Status != "sent" || e.DSN != "2.0.0" {
		t.Errorf("ParseLine(quoted fields) = %+v, %v; want status=sent dsn=2.0.0", e, ok)
	}
}

// TestParseSASLFailure: smtp.gmail.com refusing Postfix's own login is
// logged as "SASL authentication failed; server NAME[IP] said: REPLY"
// (smtp_sasl_glue.c); the reply is the upstream's, at the auth stage, so
// that the companion alerts the administrator about the relay's account.
func TestParseSASLFailure(t *testing.T) {
	line := `Dec  5 03:02:30 postfix postfix/smtp[534]: 7841F98877E: to=<bob@gmail.com>, relay=smtp.gmail.com[142.250.102.108]:587, delay=1.2, delays=0.01/0/1.2/0, dsn=4.7.8, status=deferred (SASL authentication failed; server smtp.gmail.com[142.250.102.108] said: 535-5.7.8 Username and Password not accepted. For more information, go to 535 5.7.8  https://support.google.com/mail/?p=BadCredentials d75a77b69052e-4a1b2c3d4e5sm123456qtb.42 - gsmtp)`
	e, ok := ParseLine(line)
	if !ok || e.Status != "deferred" {
		t.Fatalf("ParseLine = %+v, %v; want the deferred delivery", e, ok)
	}
	if e.Stage != "auth" || !strings.HasPrefix(e.Reply, "535-5.7.8 Username and Password not accepted") || !strings.HasSuffix(e.Reply, "- gsmtp") {
		t.Errorf("Reply %q, Stage %q; want Gmail's 535 at the auth stage", e.Reply, e.Stage)
	}
	// The same words from another server than the relay's are no reply.
	other := strings.Replace(line, "server smtp.gmail.com[142.250.102.108]", "server evil.example[192.0.2.66]", 1)
	if e, ok := ParseLine(other); !ok || e.Reply != "" {
		t.Errorf("ParseLine(other server) = %+v, %v; want no reply", e, ok)
	}
}
