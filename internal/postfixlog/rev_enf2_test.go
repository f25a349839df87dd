package postfixlog

import (
	"strings"
	"testing"
)

// TestRevEnf2AmavisBlockedQueuedAs: amavis re-injects only what it passes,
// so a line for a message it blocked has no queued_as of its own, and a
// "queued_as:" in that line is the sender's Message-ID. A spammer whose
// blocked message carried "Message-ID: <a, queued_as: B, b@...>" became
// the original client of queue id B, another client's re-injected message:
// a welcomelisted partner's mail then counted as the spammer's, and Gmail's
// refusal of it blocked the partner's domain. A line of a passed message
// that lacks its own queued_as (a template without it, a forward whose
// reply amavis could not read) is the same text, and a message is
// re-injected once: a second amavis line never replaces the first link.
func TestRevEnf2AmavisBlockedQueuedAs(t *testing.T) {
	for _, result := range []string{"Blocked SPAM {DiscardedInbound,Quarantined}", "Passed SPAMMY {RelayedTaggedInbound}"} {
		revEnf2AmavisFake(t, strings.Replace(amavisFakeLog, "RESULT", result, 1))
	}
}

const amavisFakeLog = `Dec  5 01:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.partner.example[192.0.2.44]
Dec  5 01:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<alice@partner.example>, size=1234, nrcpt=1 (queue active)
Dec  5 01:00:02 mx1 postfix/smtpd[2200]: 5D0E1985119: client=localhost[127.0.0.1]
Dec  5 01:00:02 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [192.0.2.44]:40000 [192.0.2.44] <alice@partner.example> -> <carol@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <m1@partner.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms
Dec  5 01:00:02 mx1 postfix/qmgr[900]: 5D0E1985119: from=<alice@partner.example>, size=1300, nrcpt=1 (queue active)
Dec  5 01:00:03 mx1 postfix/smtpd[2107]: 6E1F2A9811A: client=mx.attacker.example[203.0.113.66]
Dec  5 01:00:04 mx1 amavis[3135]: (03135-09) RESULT, [203.0.113.66]:40001 [203.0.113.66] <bob@attacker.example> -> <dave@gmail.com>, quarantine: spam-x, Queue-ID: 6E1F2A9811A, Message-ID: <a, queued_as: 5D0E1985119, b@attacker.example>, mail_id: b, Hits: 20.1, size: 1234, 812 ms
Dec  5 01:00:05 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely suspicious due to the very low reputation of the sending 550-5.7.1 domain. 550 5.7.1 for more information. y - gsmtp (in reply to end of DATA command))
`

func revEnf2AmavisFake(t *testing.T, log string) {
	t.Helper()
	tr := &Tracker{}
	var got []Refusal
	for _, line := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		e, ok := ParseLine(line)
		if ok && e.Kind == Amavis && strings.HasPrefix(e.Result, "Blocked") && len(e.QueuedAs) > 0 {
			t.Errorf("a blocked message's line gives queued_as %v (its Message-ID's)", e.QueuedAs)
		}
		if ok {
			got = append(got, tr.Add(e)...)
		}
	}
	got = append(got, tr.Release(0)...)
	if len(got) != 1 || got[0].ClientIP != "192.0.2.44" || got[0].OrigQueueID != "4C2B7985118" {
		t.Fatalf("refusals = %+v; want one, of the partner's message 4C2B7985118 from 192.0.2.44", got)
	}
}

// TestRevEnf2QueuedAsLastWord: a local content filter's "250 2.0.0 Ok:
// queued as ID" links a message to its re-injected copy, and ends with the
// id. A loopback LMTP server (Dovecot) echoes the recipient in its reply,
// "250 2.0.0 <RCPT> ID Saved": a recipient whose quoted local part said
// "queued as VICTIMQID" linked another client's message to the sender's
// client, and Gmail's refusal of it then named the wrong client.
func TestRevEnf2QueuedAsLastWord(t *testing.T) {
	for line, want := range map[string]string{
		`Dec  5 01:00:02 mx1 postfix/lmtp[2108]: 6E1F2A9811A: to=<"x queued as 5D0E1985119 y"@mx1.example>, relay=127.0.0.1[127.0.0.1]:24, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <"x queued as 5D0E1985119 y"@mx1.example> ktSxHm5bYGXzNgAA7Y Saved)`: "",
		`Dec  5 01:00:02 mx1 postfix/smtp[2108]: 4C2B7985118: to=<carol@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119)`:                 "5D0E1985119",
		`Dec  5 01:00:02 mx1 postfix/smtp[2108]: 4C2B7985118: to=<carol@gmail.com>, relay=127.0.0.1[127.0.0.1]:10025, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5D0E1985119)`:                                                             "5D0E1985119",
	} {
		e, ok := ParseLine(line)
		if !ok {
			t.Fatalf("ParseLine(%q) failed", line)
		}
		if got := strings.Join(e.QueuedAs, ","); got != want {
			t.Errorf("QueuedAs of %q = %q; want %q", line, got, want)
		}
	}
}
