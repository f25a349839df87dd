package postfixlog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGm28HeldRefusalQueueIDReused: Gmail refuses amavis's re-injected
// copy of a spammer's message before amavis's line names the original
// (the refusal is held), the copy leaves the queue, and Postfix gives
// its short queue id to the next message, from an innocent client, before
// amavis's line comes or the wait ends. The held refusal is about the
// spammer's copy: it must never name the innocent client, who sent
// nothing that was refused.
func TestGm28HeldRefusalQueueIDReused(t *testing.T) {
	lines := strings.Split(amavisLog, "\n")
	// The spammer's lines up to its copy's refusal and removal, without
	// amavis's line and the hand-over line (8 and 9), lost or late.
	spam := append(append([]string{}, lines[:8]...), lines[11], lines[12])
	reuse := "Nov 22 10:00:04 mx1 postfix/smtpd[2300]: 5D0E1985119: client=mail.innocent.example[198.51.100.7]\n" +
		"Nov 22 10:00:04 mx1 postfix/qmgr[900]: 5D0E1985119: from=<alice@innocent.example>, size=900, nrcpt=1 (queue active)"
	for _, late := range []string{"", lines[8] + "\n" + lines[9]} {
		now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
		tr := &Tracker{Now: func() time.Time { return now }}
		got := track(tr, strings.Join(spam, "\n"))
		got = append(got, track(tr, reuse)...)
		if late != "" {
			got = append(got, track(tr, late)...)
		}
		now = now.Add(time.Minute)
		got = append(got, tr.Release(reinjectionWaitForTest)...)
		got = append(got, tr.Release(0)...)
		if len(got) != 1 {
			t.Errorf("late link %v: refusals %+v; want the one refusal", late != "", got)
		}
		for _, r := range got {
			if r.ClientIP == "198.51.100.7" || r.From == "alice@innocent.example" {
				t.Errorf("late link %v: refusal %+v names the innocent client of the reused queue id", late != "", r)
			}
		}
		// The new message's own refusal is its own client's: the late
		// hand-over line names the spammer's copy, not this message.
		own := track(tr, "Nov 22 10:01:05 mx1 postfix/smtp[2111]: 5D0E1985119: to=<dave@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=4.2.2, status=deferred (host gmail-smtp-in.l.google.com[142.250.102.27] said: 452-4.2.2 The recipient's inbox is out of storage space. 452 4.2.2 Please direct the recipient to x - gsmtp (in reply to RCPT TO command))")
		if len(own) != 1 || own[0].ClientIP != "198.51.100.7" || own[0].OrigQueueID != "" {
			t.Errorf("late link %v: the new message's refusal %+v; want one from 198.51.100.7, not re-injected", late != "", own)
		}
	}
}

// reinjectionWaitForTest is the companion's wait for a content filter's
// link.
const reinjectionWaitForTest = 30 * time.Second

// TestGm28FollowLineAfterLongZeros: a writer that does not append
// (O_APPEND) goes on at its old offset after copytruncate, and a power
// loss leaves the size of the lost writes as zeros: the log then holds a
// run of zero octets, as long as the old file or the lost writes (more
// than maxLine), and the lines written after it. No line's text starts
// with a zero (TestGm27LineAfterZeros): the first line after the run is a
// whole line, and a spammer's refusal logged there must be read, not
// skipped as the tail of an overlong line.
func TestGm28FollowLineAfterLongZeros(t *testing.T) {
	line := "Dec  7 10:00:00 relay postfix/smtp[4242]: 4F3A21C0B2: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. x - gsmtp (in reply to end of DATA command))"
	for _, zeros := range []int{maxLine - 10, maxLine, maxLine + 1, 2*maxLine + 12345, 5 * maxLine} {
		dir := t.TempDir()
		log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
		appendFile(t, log, "before\n"+strings.Repeat("\x00", zeros)+line+"\nafter\n")
		var read []string
		for _, l := range runOnce(t, log, state) {
			if l = strings.TrimLeft(l, "\x00"); l != "" {
				read = append(read, l)
			}
		}
		if len(read) != 3 || read[0] != "before" || read[1] != line || read[2] != "after" {
			t.Errorf("%d zeros: read %d lines %.60q; want before, the refusal, after", zeros, len(read), read)
		}
		if e, ok := ParseLine(line); !ok || e.Kind != Delivery {
			t.Fatalf("the refusal line is not read: %+v", e)
		}
	}
}

// TestGm28NoticeRefusedBeforeItsLine: an innocent client's smtpd session
// gives a queue id up (RSET, then QUIT, or another transaction: no qmgr
// line, no "removed"), and Postfix later gives that short id to a notice
// that bounce(8) makes. qmgr may hand the notice to smtp(8), and Gmail
// refuse it, before bounce(8) logs its "sender non-delivery notification:
// ID" line (TestSteer17NoticeForgetsStaleClient has that line first): the
// refusal must not take the client that gave the id up. A message whose
// session goes on (pipelined, qmgr's line after the next client=) keeps
// its client.
func TestGm28NoticeRefusedBeforeItsLine(t *testing.T) {
	notice := `Dec  6 14:00:05 mx1 postfix/cleanup[2110]: 1BC7F9DC767: message-id=<20261206140005.1BC7F9DC767@mx1.example>
Dec  6 14:00:05 mx1 postfix/qmgr[900]: 1BC7F9DC767: from=<>, size=3481, nrcpt=1 (queue active)
Dec  6 14:00:05 mx1 postfix/smtp[2111]: 1BC7F9DC767: to=<eve@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 likely unsolicited mail. 550 5.7.1 x - gsmtp (in reply to end of DATA command))
Dec  6 14:00:05 mx1 postfix/bounce[2112]: 18A889DC732: sender non-delivery notification: 1BC7F9DC767`
	for name, gaveUp := range map[string]string{
		"quit": `Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 1BC7F9DC767: client=mx.innocent.example[198.51.100.7]
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: disconnect from mx.innocent.example[198.51.100.7] ehlo=1 mail=1 rcpt=1 rset=1 quit=1 commands=5`,
		"data cut off": `Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 1BC7F9DC767: client=mx.innocent.example[198.51.100.7]
Dec  6 14:00:00 mx1 postfix/cleanup[2110]: 1BC7F9DC767: message-id=<a@innocent.example>
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: lost connection after DATA (0 bytes) from mx.innocent.example[198.51.100.7]
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: disconnect from mx.innocent.example[198.51.100.7] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4`,
		"next transaction": `Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 1BC7F9DC767: client=mx.innocent.example[198.51.100.7]
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: 2AB3C9DC111: client=mx.innocent.example[198.51.100.7]`,
	} {
		for _, r := range track(&Tracker{}, gaveUp+"\n"+notice) {
			if r.QueueID == "1BC7F9DC767" && r.ClientIP != "" {
				t.Errorf("%s: the notice's refusal names client %s, who gave the id up", name, r.ClientIP)
			}
		}
	}
	// Pipelined: qmgr logs the first message after the session's next
	// client= line; it and its refusal are the client's.
	pipelined := `Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 3CD4E9DC222: client=mx.spam.example[203.0.113.7]
Dec  6 14:00:00 mx1 postfix/cleanup[2110]: 3CD4E9DC222: message-id=<s1@spam.example>
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: 4DE5F9DC333: client=mx.spam.example[203.0.113.7]
Dec  6 14:00:01 mx1 postfix/cleanup[2110]: 4DE5F9DC333: message-id=<s2@spam.example>
Dec  6 14:00:01 mx1 postfix/qmgr[900]: 3CD4E9DC222: from=<bob@spam.example>, size=300, nrcpt=1 (queue active)
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: disconnect from mx.spam.example[203.0.113.7] ehlo=1 mail=2 rcpt=2 data=2 quit=1 commands=8
Dec  6 14:00:02 mx1 postfix/qmgr[900]: 4DE5F9DC333: from=<bob@spam.example>, size=300, nrcpt=1 (queue active)
Dec  6 14:00:03 mx1 postfix/smtp[2111]: 3CD4E9DC222: to=<a@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail. x - gsmtp (in reply to end of DATA command))
Dec  6 14:00:03 mx1 postfix/smtp[2111]: 4DE5F9DC333: to=<b@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail. y - gsmtp (in reply to end of DATA command))`
	got := track(&Tracker{}, pipelined)
	if len(got) != 2 || got[0].ClientIP != "203.0.113.7" || got[1].ClientIP != "203.0.113.7" {
		t.Errorf("pipelined: refusals %+v; want both from 203.0.113.7", got)
	}
}
