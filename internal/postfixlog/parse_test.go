package postfixlog

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	gmailUnsolicited = `550-5.7.1 [192.0.2.10      12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. Please visit 550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError 550 5.7.1 for more information. a640c23a62f3a-a7a3c1f4d2si123456766b.99 - gsmtp`
	gmailDMARC       = `550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's 550-5.7.26 DMARC policy. Please contact the administrator of example.com domain 550-5.7.26 if this was a legitimate mail. To learn about the DMARC initiative, go to 550 5.7.26  https://support.google.com/mail/?p=DmarcRejection d2e1a72fcca58-70d1b2a8c5asi1234567b3a.318 - gsmtp`
)

func TestParseLine(t *testing.T) {
	syslogTime := time.Date(0, time.November, 22, 10, 0, 1, 0, time.UTC)
	isoTime := time.Date(2026, time.November, 22, 10, 0, 1, 123456000, time.UTC)
	// spammer is the Client event of postfix/smtpd[2107] on mx1 for the
	// spammer's message; reinjected that of the re-injection smtpd, with
	// the original client origName[origIP].
	spammer := Event{Kind: Client, Time: syslogTime, Host: "mx1", Program: "postfix/smtpd", Service: "smtpd", PID: 2107,
		QueueID: "4C2B7985118", ClientName: "mail.spammer.example", ClientIP: "203.0.113.7"}
	reinjected := func(origName, origIP string) Event {
		return Event{Kind: Client, Time: syslogTime, Host: "mx1", Program: "postfix/smtpd", Service: "smtpd", PID: 2200,
			QueueID: "5D0E1985119", ClientName: "localhost", ClientIP: "127.0.0.1",
			OrigQueueID: "4C2B7985118", OrigClientName: origName, OrigClientIP: origIP}
	}
	tests := []struct {
		line string
		want Event
	}{
		{
			"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]",
			spammer,
		},
		{
			"2026-11-22T10:00:01.123456+00:00 mx1 postfix/submission/smtpd[31]: 4Ybq1x0Lzkz9sWl: client=unknown[2001:db8::25], sasl_method=PLAIN, sasl_username=alice",
			Event{Kind: Client, Time: isoTime, Host: "mx1", Program: "postfix/submission/smtpd", Service: "smtpd", PID: 31,
				QueueID: "4Ybq1x0Lzkz9sWl", ClientName: "unknown", ClientIP: "2001:db8::25"},
		},
		{
			// The re-injection smtpd after amavis's XFORWARD.
			"Nov 22 10:00:01 mx1 postfix/smtpd[2200]: 5D0E1985119: client=localhost[127.0.0.1], orig_queue_id=4C2B7985118, orig_client=mail.spammer.example[203.0.113.7]",
			reinjected("mail.spammer.example", "203.0.113.7"),
		},
		{
			// smtpd_client_port_logging = yes: the client and the
			// original client with their ports, as Postfix 3.7 logs them.
			"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]:55544",
			spammer,
		},
		{
			"Nov 22 10:00:01 mx1 postfix/smtpd[2200]: 5D0E1985119: client=localhost[127.0.0.1]:40022, orig_queue_id=4C2B7985118, orig_client=unknown[2001:db8::7]:unknown",
			reinjected("unknown", "2001:db8::7"),
		},
		{
			"Nov  2 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: message-id=<20261122100001.ABC@spammer.example>",
			Event{Kind: MessageID, Time: syslogTime.AddDate(0, 0, -20), Host: "mx1", Program: "postfix/cleanup", Service: "cleanup", PID: 2110,
				QueueID: "4C2B7985118", MessageID: "20261122100001.ABC@spammer.example"},
		},
		{
			"Nov 22 10:00:01 mx1 postfix-out/qmgr[900]: 4C2B7985118: from=<bob@example.com>, size=1234, nrcpt=2 (queue active)",
			Event{Kind: Queued, Time: syslogTime, Host: "mx1", Program: "postfix-out/qmgr", Service: "qmgr", PID: 900,
				QueueID: "4C2B7985118", From: "bob@example.com", Size: 1234, Nrcpt: 2},
		},
		{
			"Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<>, size=2785, nrcpt=1 (queue active)",
			Event{Kind: Queued, Time: syslogTime, Host: "mx1", Program: "postfix/qmgr", Service: "qmgr", PID: 900,
				QueueID: "4C2B7985118", Size: 2785, Nrcpt: 1},
		},
		{
			"Nov 22 10:00:01 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: " + gmailUnsolicited + " (in reply to end of DATA command))",
			Event{Kind: Delivery, Time: syslogTime, Host: "mx1", Program: "postfix/smtp", Service: "smtp", PID: 2111,
				QueueID: "5D0E1985119", To: "carol@gmail.com", Relay: "gmail-smtp-in.l.google.com[142.250.102.27]:25",
				RelayHost: "gmail-smtp-in.l.google.com", RelayIP: "142.250.102.27", DSN: "5.7.1", Status: "bounced",
				Detail: "host gmail-smtp-in.l.google.com[142.250.102.27] said: " + gmailUnsolicited + " (in reply to end of DATA command)",
				Reply:  gmailUnsolicited, Stage: "end-of-data"},
		},
		{
			"2026-11-22T10:00:01.123456Z mx1 postfix/lmtp[7]: 5D0E1985119: to=<dave@gmail.com>, orig_to=<dave@example.org>, relay=alt1.gmail-smtp-in.l.google.com[IPv6:2a00:1450:400c:c00::1a]:25, delay=0.5, delays=0/0/0.2/0.3, dsn=4.7.0, status=deferred (host alt1.gmail-smtp-in.l.google.com[2a00:1450:400c:c00::1a] said: 421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 abc - gsmtp (in reply to RCPT TO command))",
			Event{Kind: Delivery, Time: isoTime, Host: "mx1", Program: "postfix/lmtp", Service: "lmtp", PID: 7,
				QueueID: "5D0E1985119", To: "dave@gmail.com", OrigTo: "dave@example.org",
				Relay:     "alt1.gmail-smtp-in.l.google.com[IPv6:2a00:1450:400c:c00::1a]:25",
				RelayHost: "alt1.gmail-smtp-in.l.google.com", RelayIP: "2a00:1450:400c:c00::1a", DSN: "4.7.0", Status: "deferred",
				Detail: "host alt1.gmail-smtp-in.l.google.com[2a00:1450:400c:c00::1a] said: 421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 abc - gsmtp (in reply to RCPT TO command)",
				Reply:  "421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 abc - gsmtp", Stage: "rcpt"},
		},
		{
			"Nov 22 10:00:01 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=mx.example.net[198.51.100.1]:25, delay=30, delays=0/0/30/0, dsn=4.4.2, status=deferred (host mx.example.net[198.51.100.1] refused to talk to me: 421 4.3.2 Service not available)",
			Event{Kind: Delivery, Time: syslogTime, Host: "mx1", Program: "postfix/smtp", Service: "smtp", PID: 2111,
				QueueID: "5D0E1985119", To: "carol@gmail.com", Relay: "mx.example.net[198.51.100.1]:25",
				RelayHost: "mx.example.net", RelayIP: "198.51.100.1", DSN: "4.4.2", Status: "deferred",
				Detail: "host mx.example.net[198.51.100.1] refused to talk to me: 421 4.3.2 Service not available",
				Reply:  "421 4.3.2 Service not available", Stage: "connect"},
		},
		{
			// No reply: a timeout.
			"Nov 22 10:00:01 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to gmail-smtp-in.l.google.com[142.250.102.27]:25: Connection timed out)",
			Event{Kind: Delivery, Time: syslogTime, Host: "mx1", Program: "postfix/smtp", Service: "smtp", PID: 2111,
				QueueID: "5D0E1985119", To: "carol@gmail.com", Relay: "none", RelayHost: "none", DSN: "4.4.1", Status: "deferred",
				Detail: "connect to gmail-smtp-in.l.google.com[142.250.102.27]:25: Connection timed out"},
		},
		{
			// Handed to amavis, which re-injected it as 5D0E1985119.
			"Nov 22 10:00:01 mx1 postfix/smtp[2108]: 4C2B7985118: to=<carol@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119)",
			Event{Kind: Delivery, Time: syslogTime, Host: "mx1", Program: "postfix/smtp", Service: "smtp", PID: 2108,
				QueueID: "4C2B7985118", To: "carol@gmail.com", Relay: "127.0.0.1[127.0.0.1]:10024",
				RelayHost: "127.0.0.1", RelayIP: "127.0.0.1", DSN: "2.0.0", Status: "sent",
				Detail: "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119",
				Reply:  "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119", QueuedAs: []string{"5D0E1985119"}},
		},
		{
			"Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: removed",
			Event{Kind: Removed, Time: syslogTime, Host: "mx1", Program: "postfix/qmgr", Service: "qmgr", PID: 900, QueueID: "4C2B7985118"},
		},
		{
			"Nov 22 10:00:01 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.7]:46134 [203.0.113.7] <bob@example.com> -> <carol@gmail.com>,<dave@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <20261122100001.ABC@spammer.example>, mail_id: dJ3Mq2_Xf1ZJ, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms",
			Event{Kind: Amavis, Time: syslogTime, Host: "mx1", Program: "amavis", Service: "amavis", PID: 3135,
				QueueID: "4C2B7985118", ClientIP: "203.0.113.7", OriginIP: "203.0.113.7", From: "bob@example.com",
				MessageID: "20261122100001.ABC@spammer.example", QueuedAs: []string{"5D0E1985119"}, Result: "Passed CLEAN"},
		},
		{
			"2026-11-22T10:00:01.123456+00:00 mx1 /usr/sbin/amavisd[77]: (00077-01-2) Passed SPAMMY {RelayedTaggedInbound}, LOCAL [127.0.0.1]:40000 [198.51.100.23] <> -> <x@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <m@x>, mail_id: a, Hits: 6.1, size: 99, queued_as: 5D0E1985119/6E1F2A9811A, 12 ms",
			Event{Kind: Amavis, Time: isoTime, Host: "mx1", Program: "/usr/sbin/amavisd", Service: "amavisd", PID: 77,
				QueueID: "4C2B7985118", ClientIP: "127.0.0.1", OriginIP: "198.51.100.23",
				MessageID: "m@x", QueuedAs: []string{"5D0E1985119", "6E1F2A9811A"}, Result: "Passed SPAMMY"},
		},
		{
			"<22>Nov 22 10:00:01 mx1 amavis[3135]: (03135-09) Blocked SPAM {DiscardedInbound,Quarantined}, [203.0.113.7]:46134 [203.0.113.7] <bob@example.com> -> <carol@gmail.com>, quarantine: spam-x.gz, Queue-ID: 4C2B7985118, Message-ID: <a@b>, mail_id: x, Hits: 25, size: 10, 50 ms",
			Event{Kind: Amavis, Time: syslogTime, Host: "mx1", Program: "amavis", Service: "amavis", PID: 3135,
				QueueID: "4C2B7985118", ClientIP: "203.0.113.7", OriginIP: "203.0.113.7", From: "bob@example.com",
				MessageID: "a@b", Result: "Blocked SPAM"},
		},
		{
			// Postfix's own maillog_file, as the harness's instance writes it.
			"Nov 22 02:58:42 postfix postfix/smtpd[8509]: 33C57985118: client=mx.spam.test[203.0.113.7]",
			Event{Kind: Client, Time: time.Date(0, time.November, 22, 2, 58, 42, 0, time.UTC), Host: "postfix",
				Program: "postfix/smtpd", Service: "smtpd", PID: 8509, QueueID: "33C57985118", ClientName: "mx.spam.test", ClientIP: "203.0.113.7"},
		},
	}
	for _, tt := range tests {
		got, ok := ParseLine(tt.line)
		if !ok {
			t.Errorf("ParseLine(%q) = false; want %v", tt.line, tt.want.Kind)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ParseLine(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestParseLineUnknown(t *testing.T) {
	for _, line := range []string{
		"",
		"garbage",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: connect from unknown[203.0.113.7]",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: NOQUEUE: reject: RCPT from unknown[203.0.113.7]: 554 5.7.1 <x@y>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: warning: hostname x does not resolve to address 1.2.3.4",
		"Nov 22 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: warning: header Subject: x from y; from=<a> to=<b>",
		"Nov 22 10:00:01 mx1 postfix/bounce[2114]: 33C57985118: sender non-delivery notification: 3E92E985116 extra",
		"Nov 22 10:00:01 mx1 sshd[1]: 4C2B7985118: client=x[1.2.3.4]",
		"Nov 22 10:00:01 mx1 amavis[3135]: (03135-08) Checking: sVU7kI7mDQxY [203.0.113.7] <a@b> -> <c@d>",
		"Nov 22 10:00:01 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=none",
		"Nov 22 10:00:01 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com, status=sent",
		"2026-13-22T10:00:01Z mx1 postfix/smtpd[2107]: 4C2B7985118: client=a[1.2.3.4]",
		"Foo 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=a[1.2.3.4]",
		"Nov 22 10:00:01 mx1 postfix/smtpd[x]: 4C2B7985118: client=a[1.2.3.4]",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=a[1.2.3.4]:25x",
		"Nov 22 10:00:05 mx1 postfix/smtpd[2300]: 4C2B7985118: uid=1000 from=<alice>",
		"Nov 22 10:00:05 mx1 postfix/pickup[2300]: 4C2B7985118: uid=x from=<alice>",
		"Nov 22 10:00:05 mx1 postfix/pickup[2300]: 4C2B7985118: uid=0 from=<a> b>",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=a[1.2.3.4]:",
		"Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=a[1.2.3.4]:1[5.6.7.8]",
	} {
		if e, ok := ParseLine(line); ok {
			t.Errorf("ParseLine(%q) = %+v, true; want false", line, e)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(`<22>1 2026-11-22T10:00:01Z mx1 postfix/smtp 2111 - [x@1 v="a \] b"] 5D0E1985119: to=<c@gmail.com>, relay=none, dsn=4.4.1, status=deferred (x)`)
	f.Add("Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]")
	f.Add("2026-11-22T10:00:01.123456+00:00 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.26, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: " + gmailDMARC + " (in reply to end of DATA command))")
	f.Add("Nov 22 10:00:01 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.7]:46134 [203.0.113.7] <bob@example.com> -> <carol@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <m@x>, mail_id: d, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms")
	f.Add("Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<bob@example.com>, size=1234, nrcpt=2 (queue active)")
	f.Add("<22>Nov  2 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: message-id=<a@b>")
	f.Add("Nov 22 10:00:05 mx1 postfix/pickup[2300]: 4C2B7985118: uid=1000 from=<alice>")
	for _, line := range hostileLines(f) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := ParseLine(line)
		if !ok {
			if e.Kind != 0 {
				t.Errorf("ParseLine(%q) = false with kind %v", line, e.Kind)
			}
			return
		}
		if e.Kind < Client || e.Kind > Notice {
			t.Errorf("ParseLine(%q): kind %d", line, e.Kind)
		}
		if !isQueueID(e.QueueID) {
			t.Errorf("ParseLine(%q): queue id %q", line, e.QueueID)
		}
		for _, id := range e.QueuedAs {
			if !isQueueID(id) {
				t.Errorf("ParseLine(%q): queued_as %q", line, id)
			}
		}
		if e.Kind == Delivery && e.Status == "" {
			t.Errorf("ParseLine(%q): a delivery without a status", line)
		}
		// The fields the enforcer acts on are read by the grammar: the
		// address is whole, the status is the one after dsn=, and a
		// refusal's reply is from the relay of the line.
		if e.Kind == Delivery {
			if !strings.Contains(line, ": to=<"+e.To+">, ") {
				t.Errorf("ParseLine(%q): to %q is not the logged address", line, e.To)
			}
			if !strings.Contains(line, ", dsn="+e.DSN+", status="+e.Status+" (") {
				t.Errorf("ParseLine(%q): status %q is not the field after dsn=", line, e.Status)
			}
			if e.Reply != "" && e.Status != "sent" && (e.RelayIP == "" || !strings.HasPrefix(strings.ToLower(e.Detail), "host "+strings.ToLower(e.RelayHost)+"[")) {
				t.Errorf("ParseLine(%q): reply %q not from relay %q", line, e.Reply, e.Relay)
			}
		}
		if e.Kind == Pickup && (e.ClientIP != "" || !strings.Contains(line, "/pickup[") && !strings.Contains(line, "/pickup: ")) {
			// A tag without [PID] is read too (parseHeader).
			t.Errorf("ParseLine(%q): a pickup line with a client, or not pickup's", line)
		}
		if e.Kind == Client && strings.Contains(line, "sasl_sender=") && e.OrigClientIP != "" {
			t.Errorf("ParseLine(%q): orig_client %q read after sasl_sender", line, e.OrigClientIP)
		}
	})
}

// TestParseRFC5424: rsyslog's RSYSLOG_SyslogProtocol23Format and
// syslog-ng write Postfix's lines in RFC 5424's form, which the enforcer
// skipped as unknown, acting on nothing. Each form parses to what the
// classic line does; a header that is not whole is refused.
func TestParseRFC5424(t *testing.T) {
	const msg = "5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 no (in reply to end of DATA command))"
	want, ok := ParseLine("2026-11-22T10:00:01.123456Z mx1 postfix/smtp[2111]: " + msg)
	if !ok {
		t.Fatal("the classic line does not parse")
	}
	for _, line := range []string{
		"<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp 2111 - - " + msg,
		"<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp 2111 - - \ufeff" + msg,
		`<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp 2111 - [timeQuality tzKnown="1"][x@1 v="a \] b \" c"] ` + msg,
	} {
		got, ok := ParseLine(line)
		if !ok || !cmp.Equal(got, want) {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v", line, got, ok, want)
		}
	}
	for _, line := range []string{
		"<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp 2111 - [x@1 v=\"a\"" + msg, // SD never ends
		"<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp 2111 -",
		"<22>1 - mx1 postfix/smtp 2111 - - " + msg,
		"<22>1 2026-11-22T10:00:01.123456Z mx1 postfix/smtp x - - " + msg,
	} {
		if got, ok := ParseLine(line); ok {
			t.Errorf("ParseLine(%q) = %+v; want refused", line, got)
		}
	}
}
