package postfixlog

import "testing"

// TestPfe19AmavisQueuedAsAfterHandOver: Postfix's hand-over line ("queued
// as 7F1A2B3C4D5") came before amavis's line about the same message, and
// so had linked the message's real copy already. The amavis line's
// Message-ID, the attacker's text relayed by an innocent list server, held
// another queued_as: the attacker's own re-injected copy, whose client=
// line was logged and whose re-injection (a large message) was still
// going on. The real choice was no longer open, the forged one was the only
// one that was, and was taken: the attacker's copy was tied to the list
// server, and Gmail's refusal of the attacker's spam banned the list
// server. A line one of whose choices is already the copy of the line's
// own message names amavis's choice: the others are the sender's text.
func TestPfe19AmavisQueuedAsAfterHandOver(t *testing.T) {
	checkHostile(t, "amavis-queued-as-after-handover.log", []Refusal{
		{QueueID: "5D0E1985119", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
	})
}

// TestPfe19Requeued: pickup's line of a message that postsuper -r
// requeued names its queue id before ("orig_id="). The message is its
// client's still, not a local submission: its refusal names that client,
// or none (not Local) when the original's client= line is not in the log.
func TestPfe19Requeued(t *testing.T) {
	lines := []string{
		"Dec  6 19:06:24 mx1 postfix/smtpd[15486]: 5337E9BC5D4: client=mx.requeued.test[203.0.113.74]",
		"Dec  6 19:06:24 mx1 postfix/cleanup[15493]: 5337E9BC5D4: message-id=<m1@requeued.test>",
		"Dec  6 19:06:24 mx1 postfix/postsuper[15494]: 5337E9BC5D4: requeued",
		"Dec  6 19:06:24 mx1 postfix/pickup[15483]: 8428D9BC5D5: uid=102 from=<bob@requeued.test> orig_id=5337E9BC5D4",
		"Dec  6 19:06:24 mx1 postfix/pickup[15483]: 9539EAC6E6F: uid=102 from=<eve@elsewhere.test> orig_id=1A2B3C4D5E6",
		"Dec  6 19:06:24 mx1 postfix/pickup[15483]: 6A4AFBD7F70: uid=1000 from=<alice@relay.test>",
	}
	for _, id := range []string{"8428D9BC5D5", "9539EAC6E6F", "6A4AFBD7F70"} {
		lines = append(lines, "Dec  6 19:06:25 mx1 postfix/smtp[15504]: "+id+": to=<spam@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=0.45, delays=0.32/0.12/0.01/0, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 unsolicited x - gsmtp (in reply to end of DATA command))")
	}
	type want struct {
		ip, orig string
		local    bool
	}
	wants := map[string]want{
		"8428D9BC5D5": {ip: "203.0.113.74", orig: "5337E9BC5D4"},
		"9539EAC6E6F": {orig: "1A2B3C4D5E6"},
		"6A4AFBD7F70": {local: true},
	}
	for _, mode := range []Reinjection{ReinjectAuto, ReinjectNever, ReinjectAlways} {
		tr := &Tracker{Reinjection: mode}
		n := 0
		for _, line := range lines {
			e, ok := ParseLine(line)
			if !ok {
				continue // postsuper's "requeued"
			}
			for _, r := range tr.Add(e) {
				n++
				w := wants[r.QueueID]
				if r.ClientIP != w.ip || r.OrigQueueID != w.orig || r.Local != w.local {
					t.Errorf("mode %d: refusal of %s: client %q orig %q local %v; want %+v", mode, r.QueueID, r.ClientIP, r.OrigQueueID, r.Local, w)
				}
			}
		}
		if n != len(wants) {
			t.Errorf("mode %d: %d refusals; want %d", mode, n, len(wants))
		}
	}
}

// TestPfe19AmavisSplitLine: amavis writes at most $logline_maxlen (980)
// characters a line, and goes on in another line ("(ID) ...rest"): the
// first piece ends in "...". A list server relays, for the attacker, a
// message whose 700-character Message-ID holds ", queued_as: ID" naming
// the attacker's re-injected copy (its client= line logged, its
// re-injection still going on): amavis's own queued_as fell in the second
// piece, and the first one's only queued_as, the forged one, tied the
// attacker's copy to the list server, which Gmail's refusal of the spam
// banned. A line that amavis cut ("..." at its end) ties nothing: its
// queued_as may be anywhere but there.
func TestPfe19AmavisSplitLine(t *testing.T) {
	checkHostile(t, "amavis-split-line.log", []Refusal{
		{QueueID: "5D0E1985119", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
	})
}
