package postfixlog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// amavisLog is a message from 203.0.113.7 through amavis (Postfix's
// content_filter) to Gmail, which refuses it: A is the queue id the
// client's message got, B the one amavis's re-injection got.
const amavisLog = `Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]
Nov 22 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: message-id=<20261122.ABC@spammer.example>
Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<bob@spammer.example>, size=1234, nrcpt=1 (queue active)
Nov 22 10:00:01 mx1 postfix/smtpd[2107]: disconnect from mail.spammer.example[203.0.113.7] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Nov 22 10:00:02 mx1 postfix/smtpd[2200]: connect from localhost[127.0.0.1]
Nov 22 10:00:02 mx1 postfix/smtpd[2200]: 5D0E1985119: client=localhost[127.0.0.1]
Nov 22 10:00:02 mx1 postfix/cleanup[2110]: 5D0E1985119: message-id=<20261122.ABC@spammer.example>
Nov 22 10:00:02 mx1 postfix/qmgr[900]: 5D0E1985119: from=<bob@spammer.example>, size=1800, nrcpt=1 (queue active)
Nov 22 10:00:02 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.7]:46134 [203.0.113.7] <bob@spammer.example> -> <carol@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <20261122.ABC@spammer.example>, mail_id: dJ3M, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms
Nov 22 10:00:02 mx1 postfix/smtp[2108]: 4C2B7985118: to=<carol@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119)
Nov 22 10:00:02 mx1 postfix/qmgr[900]: 4C2B7985118: removed
Nov 22 10:00:03 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 for more information. x - gsmtp (in reply to end of DATA command))
Nov 22 10:00:03 mx1 postfix/qmgr[900]: 5D0E1985119: removed
`

func track(tr *Tracker, log string) []Refusal {
	var out []Refusal
	for _, line := range strings.Split(log, "\n") {
		if e, ok := ParseLine(line); ok {
			out = append(out, tr.Add(e)...)
		}
	}
	return out
}

func TestTrackerThroughAmavis(t *testing.T) {
	reply := "550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 for more information. x - gsmtp"
	base := Refusal{
		QueueID: "5D0E1985119", ClientIP: "203.0.113.7", ClientName: "mail.spammer.example", OrigQueueID: "4C2B7985118",
		From: "bob@spammer.example", FromKnown: true, To: "carol@gmail.com", MessageID: "20261122.ABC@spammer.example",
		Relay: "gmail-smtp-in.l.google.com[142.250.102.27]:25", RelayHost: "gmail-smtp-in.l.google.com",
		Reply: reply, Stage: "end-of-data", Status: "bounced", DSN: "5.7.1",
	}
	without := func(log, prefix string) string {
		var keep []string
		for _, l := range strings.Split(log, "\n") {
			if !strings.Contains(l, prefix) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	noAmavis, noAmavisNoSent := without(amavisLog, "amavis["), without(without(amavisLog, "amavis["), "status=sent")
	direct := base
	direct.ClientIP, direct.ClientName, direct.OrigQueueID = "127.0.0.1", "localhost", ""
	unknown := direct
	unknown.ClientIP, unknown.ClientName = "", ""
	tests := []struct {
		name string
		mode Reinjection
		log  string
		want Refusal
	}{
		{"amavis line", ReinjectAuto, amavisLog, base},
		{"queued-as reply only", ReinjectAuto, noAmavis, base},
		{"no link at all", ReinjectAuto, noAmavisNoSent, direct},
		{"forced, no link", ReinjectAlways, noAmavisNoSent, unknown},
		{"forced, amavis line", ReinjectAlways, amavisLog, base},
		{"never", ReinjectNever, amavisLog, direct},
	}
	for _, tt := range tests {
		tr := &Tracker{Reinjection: tt.mode}
		got := track(tr, tt.log)
		got = append(got, tr.Release(0)...)
		if diff := cmp.Diff([]Refusal{tt.want}, got, cmpopts.IgnoreFields(Refusal{}, "Time")); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if tr.Len() != 0 {
			t.Errorf("%s: %d queue ids remembered after both were removed; want 0", tt.name, tr.Len())
		}
	}
}

// TestTrackerHold: the re-injected copy is refused before amavis logs the
// link; the refusal waits for it.
func TestTrackerHold(t *testing.T) {
	lines := strings.Split(amavisLog, "\n")
	// Move the refusal (line 11) before the amavis line (line 8).
	reordered := append(append(append([]string{}, lines[:8]...), lines[11]), append(lines[8:11], lines[12:]...)...)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tr := &Tracker{Now: func() time.Time { return now }}
	got := track(tr, strings.Join(reordered[:9], "\n"))
	if len(got) != 0 || tr.Held() != 1 {
		t.Fatalf("before the link: refusals %+v, %d held; want none, 1 held", got, tr.Held())
	}
	if r := tr.Release(30 * time.Second); len(r) != 0 {
		t.Fatalf("Release(30s) at once = %+v; want nothing", r)
	}
	got = track(tr, strings.Join(reordered[9:], "\n"))
	if len(got) != 1 || got[0].ClientIP != "203.0.113.7" || got[0].OrigQueueID != "4C2B7985118" || tr.Held() != 0 {
		t.Errorf("after the link: refusals %+v, %d held; want one from 203.0.113.7", got, tr.Held())
	}

	// No link ever: released after the wait, with the loopback client.
	tr = &Tracker{Now: func() time.Time { return now }}
	track(tr, strings.Join(reordered[:9], "\n"))
	b, _ := json.Marshal(tr)
	tr = &Tracker{Now: func() time.Time { return now }}
	if err := json.Unmarshal(b, tr); err != nil || tr.Held() != 1 {
		t.Fatalf("held refusal not restored from %s: %v", b, err)
	}
	now = now.Add(time.Minute)
	if r := tr.Release(30 * time.Second); len(r) != 1 || r[0].ClientIP != "127.0.0.1" {
		t.Errorf("Release after a minute = %+v; want the refusal from 127.0.0.1", r)
	}
}

func TestTrackerXforward(t *testing.T) {
	log := `Nov 22 10:00:01 mx1 postfix/smtpd[1]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]
Nov 22 10:00:02 mx1 postfix/smtpd[2]: 5D0E1985119: client=localhost[127.0.0.1], orig_queue_id=4C2B7985118, orig_client=mail.spammer.example[203.0.113.7]
Nov 22 10:00:02 mx1 postfix/qmgr[9]: 4C2B7985118: removed
Nov 22 10:00:03 mx1 postfix/smtp[3]: 5D0E1985119: to=<carol@gmail.com>, relay=x[192.0.2.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.7.0, status=deferred (host x[192.0.2.1] said: 421 4.7.0 try later - gsmtp (in reply to RCPT TO command))
Nov 22 10:10:03 mx1 postfix/qmgr[9]: 5D0E1985119: from=<bob@spammer.example>, size=1800, nrcpt=1 (queue active)
Nov 22 10:10:03 mx1 postfix/smtp[3]: 5D0E1985119: to=<carol@gmail.com>, relay=x[192.0.2.1]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=4.7.0, status=deferred (host x[192.0.2.1] said: 421 4.7.0 try later - gsmtp (in reply to RCPT TO command))
`
	got := track(&Tracker{}, log)
	if len(got) != 2 {
		t.Fatalf("refusals = %+v; want 2 (the tracker reports each; the enforcer acts once)", got)
	}
	for _, r := range got {
		if r.ClientIP != "203.0.113.7" || r.OrigQueueID != "4C2B7985118" || r.Stage != "rcpt" || r.Status != "deferred" {
			t.Errorf("refusal = %+v; want client 203.0.113.7 from 4C2B7985118, rcpt, deferred", r)
		}
	}
	if got[1].From != "bob@spammer.example" {
		t.Errorf("second refusal from %q; want bob@spammer.example", got[1].From)
	}
}

func TestTrackerBounds(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tr := &Tracker{MaxEntries: 100, MaxAge: time.Hour, Now: func() time.Time { return now }}
	for i := 0; i < 1000; i++ {
		tr.Add(Event{Kind: Client, QueueID: fmt.Sprintf("A%05d", i), ClientIP: "192.0.2.1"})
	}
	if tr.Len() > 100 {
		t.Errorf("Len = %d; want at most 100", tr.Len())
	}
	// The newest are kept.
	if _, ok := tr.msgs["A00999"]; !ok {
		t.Error("the newest queue id was forgotten")
	}
	now = now.Add(2 * time.Hour)
	for i := 0; i < 1000; i++ {
		tr.Add(Event{Kind: MessageID, QueueID: fmt.Sprintf("B%05d", i%50), MessageID: "x"})
	}
	if tr.Len() != 50 {
		t.Errorf("Len = %d after the old ones expired; want 50", tr.Len())
	}
}

func TestTrackerJSON(t *testing.T) {
	tr := &Tracker{}
	lines := strings.Split(amavisLog, "\n")
	track(tr, strings.Join(lines[:9], "\n"))
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var back Tracker
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := track(&back, strings.Join(lines[9:], "\n"))
	if len(got) != 1 || got[0].ClientIP != "203.0.113.7" || got[0].From != "bob@spammer.example" {
		t.Errorf("after a restart from JSON %s: refusals %+v; want one from 203.0.113.7", b, got)
	}
}

// TestTrackerQueueIDReused: Postfix reuses short queue ids. A message
// that never reached qmgr (cleanup refused it, the client went away) logs
// no "removed", and neither does one whose line was lost; the next
// message with its id, submitted by pickup or by another client, must not
// inherit its client or its content filter's origin.
func TestTrackerQueueIDReused(t *testing.T) {
	const refused = `Nov 22 10:00:09 mx1 postfix/smtp[2111]: 4C2B7985118: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail. x - gsmtp (in reply to end of DATA command))`
	tests := []struct {
		name, log string
		ip        string
		local     bool
	}{
		{"pickup after a message refused at DATA", `Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=friend.example[198.51.100.9]
Nov 22 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: reject: header Subject: x from friend.example[198.51.100.9]; from=<a@friend.example> to=<b@gmail.com> proto=ESMTP helo=<friend.example>: 5.7.1 no
Nov 22 10:00:05 mx1 postfix/pickup[2300]: 4C2B7985118: uid=1000 from=<alice>
Nov 22 10:00:05 mx1 postfix/cleanup[2110]: 4C2B7985118: message-id=<l@mx1>
Nov 22 10:00:05 mx1 postfix/qmgr[900]: 4C2B7985118: from=<alice@mx1.example>, size=300, nrcpt=1 (queue active)
` + refused, "", true},
		{"a client after a re-injected message whose removed line was lost", `Nov 22 10:00:01 mx1 postfix/smtpd[2200]: 4C2B7985118: client=localhost[127.0.0.1], orig_queue_id=3B1A0985117, orig_client=friend.example[198.51.100.9]
Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<a@friend.example>, size=300, nrcpt=1 (queue active)
Nov 22 10:00:05 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]
Nov 22 10:00:05 mx1 postfix/qmgr[900]: 4C2B7985118: from=<bob@spammer.example>, size=300, nrcpt=1 (queue active)
` + refused, "203.0.113.7", false},
		{"a client after a pickup message", `Nov 22 10:00:01 mx1 postfix/pickup[2300]: 4C2B7985118: uid=0 from=<root>
Nov 22 10:00:05 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]
` + refused, "203.0.113.7", false},
		{"no first line at all", refused, "", false},
	}
	for _, tt := range tests {
		tr := &Tracker{}
		got := append(track(tr, tt.log), tr.Release(0)...)
		if len(got) != 1 || got[0].ClientIP != tt.ip || got[0].Local != tt.local || got[0].OrigQueueID != "" {
			t.Errorf("%s: refusals %+v; want one, client %q, local %v", tt.name, got, tt.ip, tt.local)
		}
	}
}
