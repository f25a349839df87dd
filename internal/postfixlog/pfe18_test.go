package postfixlog

import (
	"strings"
	"testing"
)

// TestPfe18CutLineNotRead: Postfix logs at most 2000 bytes of a line's
// text. A client that chooses the length of its address chooses where the
// cut falls, and a cut right after a parenthesis in Gmail's reply ("a hard
// fail policy (-all)") left a line that still ended in ")": it was read as
// a whole delivery whose reply was cut short. Such a line is never read
// as a delivery; ParseCut reads it as cut.
func TestPfe18CutLineNotRead(t *testing.T) {
	head := "Dec  5 01:00:02 mx1 postfix/smtp[2111]: "
	reply := "550-5.7.26 The MAIL FROM domain [attacker.example] has an SPF record with a hard fail policy (-all) but it fails to pass SPF checks with the ip: [192.0.2.1]. x - gsmtp"
	tail := ", relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.26, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: " + reply + " (in reply to end of DATA command))"
	text := func(local string) string {
		return "4C2B7985118: to=<owner@gmail.com>, orig_to=<" + local + "@relay.example>" + tail
	}
	// The local part that puts the cut right after "(-all)".
	cutAt := strings.Index(text(""), "(-all)") + len("(-all)")
	local := strings.Repeat("x", MaxLogText-cutAt)
	line := head + text(local)[:MaxLogText]
	if !strings.HasSuffix(line, "(-all)") {
		t.Fatalf("the line ends %q", line[len(line)-20:])
	}
	if e, ok := ParseLine(line); ok {
		t.Errorf("ParseLine(cut line) = %+v; want it not read", e)
	}
	if e, ok := ParseCut(line); !ok || e.QueueID != "4C2B7985118" || e.To != "owner@gmail.com" {
		t.Errorf("ParseCut(cut line) = %+v, %v; want queue 4C2B7985118 to owner@gmail.com", e, ok)
	}
	// Shorter, and whole, it is read.
	whole := head + text(local[:len(local)-len(reply)-100])
	if e, ok := ParseLine(whole); !ok || e.Reply != reply {
		t.Errorf("ParseLine(whole line) = %+v, %v; want the reply %q", e, ok, reply)
	}
	if _, ok := ParseCut(whole); ok {
		t.Errorf("ParseCut(whole line) = true")
	}
}
