package postfixlog

import (
	"strings"
	"testing"
)

// TestGm27LineAfterZeros: a power loss leaves a run of zero octets in a
// syslog file where the last writes before it were lost (ext4's delayed
// allocation: the size was committed, the data not), and the syslog
// daemon goes on appending after them. The first line written after the
// restart then starts with the zeros. No syslog daemon starts a line
// with a zero octet (it writes a timestamp first), so the zeros are the
// disk's, and the line after them is a whole line: a spammer's refusal
// logged there was skipped. When the crash cut the last line short, its
// piece comes before the zeros: text that other programs (anything that
// logs) may have chosen comes before a zero there, and such a line is
// still not read.
func TestGm27LineAfterZeros(t *testing.T) {
	line := "Dec  7 10:00:00 relay postfix/smtp[4242]: 4F3A21C0B2: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. x - gsmtp (in reply to end of DATA command))"
	want, ok := ParseLine(line)
	if !ok {
		t.Fatal("the whole line is not read")
	}
	for name, l := range map[string]string{
		"zeros":    strings.Repeat("\x00", 4096) + line,
		"one zero": "\x00" + line,
	} {
		got, ok := ParseLine(l)
		if !ok || got.Kind != Delivery || got.QueueID != want.QueueID || got.Reply != want.Reply || got.Stage != want.Stage {
			t.Errorf("%s: ParseLine = %v, %+v; want the delivery after the zeros", name, ok, got)
		}
		if _, cut := ParseCut(l); cut {
			t.Errorf("%s: ParseCut read a whole line as cut", name)
		}
	}
	for _, l := range []string{
		"Dec  7 09:59:59 relay postfix/qmgr[77]: 1A2B3C4D5E: from=<x@exa" + strings.Repeat("\x00", 812) + line,
		"\x00\x00Dec  7 09:59:59 relay app[1]: user text\x00" + line,
	} {
		if e, ok := ParseLine(l); ok {
			t.Errorf("ParseLine(%q) = %+v; want a line with text before a zero not read", l[:40], e)
		}
	}
	// A cut delivery line after zeros is still read as cut.
	cut := "Dec  7 10:00:00 relay postfix/smtp[4242]: 4F3A21C0B2: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.25 12] Our sys"
	if e, ok := ParseCut(strings.Repeat("\x00", 10) + cut); !ok || e.QueueID != "4F3A21C0B2" {
		t.Errorf("ParseCut of a cut line after zeros = %v, %+v; want it read as cut", ok, e)
	}
}
