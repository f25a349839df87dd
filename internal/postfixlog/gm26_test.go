package postfixlog

import "testing"

// TestGM26BusyBoxFormat: BusyBox's syslogd (Alpine's default) writes the
// facility and priority between the host and the tag ("Dec  7 10:00:01
// relay mail.info postfix/smtpd[100]: ..."). No such line was read:
// postfix-enforcer on such a system acted on nothing, and a delivery line
// that BusyBox cut short (its read buffer is 256 bytes by default) was not
// even reported as cut.
func TestGM26BusyBoxFormat(t *testing.T) {
	const stamp = "Dec  7 10:00:01 relay mail.info "
	if e, ok := ParseLine(stamp + "postfix/smtpd[100]: 4ABC123DEF: client=unknown[203.0.113.5]"); !ok || e.Kind != Client || e.ClientIP != "203.0.113.5" || e.Host != "relay" || e.Program != "postfix/smtpd" {
		t.Errorf("client line: %+v, %v; want the client 203.0.113.5 of host relay", e, ok)
	}
	whole := stamp + "postfix/smtp[103]: 4ABC123DEF: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. x - gsmtp (in reply to end of DATA command))"
	if e, ok := ParseLine(whole); !ok || e.Kind != Delivery || e.Stage != "end-of-data" || e.Status != "bounced" {
		t.Errorf("delivery line: %+v, %v; want a refusal at the end of data", e, ok)
	}
	if e, ok := ParseCut(whole[:255]); !ok || e.QueueID != "4ABC123DEF" || e.To != "bob@gmail.com" {
		t.Errorf("delivery line cut at 255 bytes: %+v, %v; want it taken for cut", e, ok)
	}
	if e, ok := ParseLine("Dec  7 10:00:01 relay <22> postfix/qmgr[102]: 4ABC123DEF: removed"); !ok || e.Kind != Removed {
		t.Errorf("<22> line: %+v, %v; want read", e, ok)
	}
	// Anything else between the host and the tag is no syslog line.
	for _, s := range []string{
		"Dec  7 10:00:01 relay mail.bogus postfix/qmgr[102]: 4ABC123DEF: removed",
		"Dec  7 10:00:01 relay x postfix/qmgr[102]: 4ABC123DEF: removed",
		"Dec  7 10:00:01 relay <2222> postfix/qmgr[102]: 4ABC123DEF: removed",
	} {
		if e, ok := ParseLine(s); ok {
			t.Errorf("ParseLine(%q) = %+v; want it not read", s, e)
		}
	}
}
