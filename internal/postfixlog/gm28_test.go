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
