package postfixlog

import "testing"

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
