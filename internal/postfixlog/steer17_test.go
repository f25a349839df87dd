package postfixlog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSteer17AmavisSubjectQueuedAs: amavis (2.7 and later, and the
// templates that log them) writes the Subject and From header fields
// after queued_as, and the parser took queued_as from its last
// occurrence. A sender whose Subject held ", queued_as: ID" linked the
// message ID (another client's re-injected copy) to its own original:
// Gmail's refusal of the other client's message was laid at the
// sender's door, and the other client was never sanctioned. An amavis
// line whose queued_as is not the only one is ambiguous and links
// nothing; Postfix's own hand-over line still does.
func TestSteer17AmavisSubjectQueuedAs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "hostile", "amavis-subject-queued-as.log"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if e, ok := ParseLine(line); ok {
			for _, r := range tr.Add(e) {
				got[r.QueueID] = r.ClientIP
			}
		}
	}
	for _, r := range tr.Release(0) {
		got[r.QueueID] = r.ClientIP
	}
	for id, want := range map[string]string{"7F1A2B3C4D5": "198.51.100.7", "5D0E1985119": "203.0.113.66"} {
		if got[id] != want {
			t.Errorf("refusal of %s: client %q; want %q (all: %v)", id, got[id], want, got)
		}
	}

	for line, want := range map[string]string{
		// The template's own.
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, Subject: \"hi\", From: b_<b@a.example>, dkim_sd=s:a.example, 812 ms": "5D0E1985119",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119/6E1F2A9811A, 812 ms":                                                  "5D0E1985119/6E1F2A9811A",
		// The sender's text after it, or before it.
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, Subject: \"x, queued_as: 7F1A2B3C4D5, y\", 812 ms":     "",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, From: x,_queued_as:_7F1A2B3C4D5_<b@a.example>, 812 ms": "5D0E1985119",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a, queued_as: 7F1A2B3C4D5, b@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms":                      "",
	} {
		e, ok := ParseLine(line)
		if !ok || e.Kind != Amavis {
			t.Errorf("ParseLine(%q) not read as amavis's", line)
			continue
		}
		if g := strings.Join(e.QueuedAs, "/"); g != want {
			t.Errorf("ParseLine(%q): queued_as %q; want %q", line, g, want)
		}
	}
}

// TestSteer17AmavisGuessAlone: amavis's template writes the client
// ("[:client_addr_port]", "[IP]:PORT") only when it knows it, and then its
// guess at the originating address from the Received fields ("[%e]",
// never with a port). When it does not know the client (Postfix's
// XFORWARD said ADDR=[UNAVAILABLE]: a message submitted with sendmail),
// the guess, which the sender wrote, is the line's first address. The
// tracker took it for the client when Postfix's own line for the queue id
// was not in the log, and a forged "Received: from x ([198.51.100.7])"
// had 198.51.100.7 banned. A lone address without a port is now no
// client: the refusal's client is unknown.
func TestSteer17AmavisGuessAlone(t *testing.T) {
	const (
		head    = "Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, "
		tail    = " <bob@attacker.example> -> <carol@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@attacker.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms"
		refusal = "Dec  6 14:00:04 mx1 postfix/smtp[2113]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 likely unsolicited mail. 550 5.7.1 x - gsmtp (in reply to end of DATA command))"
	)
	for clients, want := range map[string]string{
		"[198.51.100.7]":                         "",
		"[203.0.113.66]:40000":                   "203.0.113.66",
		"[203.0.113.66]:40000 [198.51.100.7]":    "203.0.113.66",
		"[203.0.113.66] [198.51.100.7]":          "203.0.113.66",
		"LOCAL [127.0.0.1]:40000 [198.51.100.7]": "",
	} {
		tr := &Tracker{}
		var got []Refusal
		for _, line := range []string{
			"Dec  6 14:00:02 mx1 postfix/smtpd[2201]: 5D0E1985119: client=localhost[127.0.0.1]",
			head + clients + tail, refusal,
		} {
			e, ok := ParseLine(line)
			if !ok {
				t.Fatalf("ParseLine(%q) failed", line)
			}
			got = append(got, tr.Add(e)...)
		}
		got = append(got, tr.Release(0)...)
		if len(got) != 1 || got[0].ClientIP != want {
			t.Errorf("amavis's %q: refusals %+v; want one with client %q", clients, got, want)
		}
	}
}

// TestSteer17TrackerFlood: any client can leave queue ids behind at no
// cost: smtpd logs "client=" at the first accepted RCPT, and a RSET (or
// a DATA cut off after a 2000-character Message-ID, which cleanup has
// logged by then) removes the queue file without a "removed" line. Those
// entries crowded the oldest out, the first lines of messages in the
// queue among them (a deferred message's refusal then had an unknown
// client: its ban was only reported), and their Message-IDs made the
// state that is written after every batch of lines hundreds of
// megabytes. Entries of messages that never reached qmgr now go first,
// and a Message-ID too long to be one is not kept.
func TestSteer17TrackerFlood(t *testing.T) {
	now := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	tr := &Tracker{MaxEntries: 1000, Now: func() time.Time { return now }}
	add := func(line string) []Refusal {
		e, ok := ParseLine(line)
		if !ok {
			t.Fatalf("ParseLine(%q) failed", line)
		}
		return tr.Add(e)
	}
	add("Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mx.spam.example[203.0.113.5]")
	add("Dec  6 14:00:00 mx1 postfix/qmgr[900]: 4C2B7985118: from=<s@spam.example>, size=500, nrcpt=1 (queue active)")
	long := strings.Repeat("m", 1950)
	for i := range 3000 {
		now = now.Add(time.Second)
		id := fmt.Sprintf("%05X%06X", i, 0xABC)
		add("Dec  6 14:00:01 mx1 postfix/smtpd[2108]: " + id + ": client=mx.flood.example[192.0.2.9]")
		add("Dec  6 14:00:01 mx1 postfix/cleanup[2109]: " + id + ": message-id=<" + long + "@flood.example>")
	}
	got := add("Dec  6 15:00:00 mx1 postfix/smtp[2111]: 4C2B7985118: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=4.7.0, status=deferred (host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.0 very low reputation of the sending IP address. 421 4.7.0 x - gsmtp (in reply to end of DATA command))")
	if len(got) != 1 || got[0].ClientIP != "203.0.113.5" || got[0].From != "s@spam.example" {
		t.Errorf("refusal of the queued message after the flood: %+v; want its client 203.0.113.5 and sender", got)
	}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() > 1000 || len(b) > 300<<10 {
		t.Errorf("after the flood: %d queue ids, state %d bytes; want at most 1000 ids and 300 KiB", tr.Len(), len(b))
	}
}

// TestSteer17LocalForward: local(8)'s "status=sent (forwarded as ID)" ties
// the copy it re-submitted to the message it delivered, whatever an
// earlier message with the copy's queue id left behind, and with -n too
// (it is no content filter). A server's reply saying "forwarded as" ties
// nothing.
func TestSteer17LocalForward(t *testing.T) {
	lines := []string{
		"Dec  6 14:13:00 postfix postfix/smtpd[8270]: 65DD49C6085: client=old.example[192.0.2.50]",
		"Dec  6 14:13:01 postfix postfix/smtpd[8270]: 554F89C6044: client=mx.spam93.test[203.0.113.93]",
		"Dec  6 14:13:01 postfix postfix/qmgr[8264]: 554F89C6044: from=<bob@spam93.test>, size=327, nrcpt=1 (queue active)",
		"Dec  6 14:13:01 postfix postfix/cleanup[8302]: 65DD49C6085: message-id=<203.0.113.93@hostile.test>",
		"Dec  6 14:13:01 postfix postfix/qmgr[8264]: 65DD49C6085: from=<bob@spam93.test>, size=462, nrcpt=1 (queue active)",
		"Dec  6 14:13:01 postfix postfix/local[8309]: 554F89C6044: to=<fwd@local.test>, relay=local, delay=0.15, delays=0.07/0.05/0/0.02, dsn=2.0.0, status=sent (forwarded as 65DD49C6085)",
		"Dec  6 14:13:01 postfix postfix/smtp[8315]: 65DD49C6085: to=<spam@gmail.com>, orig_to=<fwd@local.test>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=0.1, delays=0/0.09/0.01/0, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail x - gsmtp (in reply to end of DATA command))",
	}
	for _, re := range []Reinjection{ReinjectAuto, ReinjectNever} {
		tr := &Tracker{Reinjection: re}
		var got []Refusal
		for _, line := range lines {
			e, ok := ParseLine(line)
			if !ok {
				t.Fatalf("ParseLine(%q) failed", line)
			}
			got = append(got, tr.Add(e)...)
		}
		if len(got) != 1 || got[0].ClientIP != "203.0.113.93" || got[0].OrigQueueID != "554F89C6044" {
			t.Errorf("reinjection %d: refusals %+v; want one of client 203.0.113.93 from 554F89C6044", re, got)
		}
	}
	e, ok := ParseLine("Dec  6 14:13:01 postfix postfix/smtp[8309]: 554F89C6044: to=<a@b.test>, relay=mx.b.test[192.0.2.9]:25, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (forwarded as 65DD49C6085)")
	if !ok || e.ForwardedAs != "" {
		t.Errorf("a server's reply read as local(8)'s forwarding: %+v", e)
	}
}

// TestSteer17NoticeForgetsStaleClient: a client's RSET (or a session cut
// off) leaves its queue id behind with no "removed", and Postfix reuses
// short queue ids (a microsecond and an inode). A notice that bounce(8)
// makes under such an id has no client= line of its own, and took the
// earlier client's: Gmail's refusal of the bounce (backscatter, from a
// forged sender) banned whoever had left the id behind. bounce(8)'s
// "ORIG: sender non-delivery notification: ID" now starts the notice
// without a client: Postfix's own, never acted on.
func TestSteer17NoticeForgetsStaleClient(t *testing.T) {
	for _, notice := range []string{"sender non-delivery notification", "postmaster non-delivery notification", "sender delay notification", "sender delivery status notification"} {
		tr := &Tracker{}
		var got []Refusal
		for _, line := range []string{
			"Dec  6 14:00:00 mx postfix/smtpd[10]: 94C099C60E2: client=innocent.example[198.51.100.7]",
			"Dec  6 14:10:00 mx postfix/cleanup[11]: 94C099C60E2: message-id=<20261206141001.94C099C60E2@mx.example>",
			"Dec  6 14:10:00 mx postfix/qmgr[12]: 94C099C60E2: from=<>, size=3103, nrcpt=1 (queue active)",
			"Dec  6 14:10:00 mx postfix/bounce[13]: 554F89C6044: " + notice + ": 94C099C60E2",
			"Dec  6 14:10:01 mx postfix/smtp[14]: 94C099C60E2: to=<forged@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=0.1, delays=0/0.09/0.01/0, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail x - gsmtp (in reply to end of DATA command))",
		} {
			e, ok := ParseLine(line)
			if !ok && !strings.Contains(line, "/bounce[") {
				t.Fatalf("ParseLine(%q) failed", line)
			}
			if ok {
				got = append(got, tr.Add(e)...)
			}
		}
		if len(got) != 1 || got[0].ClientIP != "" || got[0].From != "" || got[0].MessageID == "" {
			t.Errorf("%s: refusals %+v; want one with no client, the null sender and its message id", notice, got)
		}
	}
}
