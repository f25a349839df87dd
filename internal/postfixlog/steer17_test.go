package postfixlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
