package postfixlog

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzTrackerSteering: an attacker chooses its Message-ID, its sender's
// local part and its Subject, and may have an innocent list server
// (198.51.100.7, victim.example) relay a message with that same Message-ID
// and Subject; its own spam is refused by Gmail. However the fields are
// written, and with amavis re-injecting or as a milter, no refusal may
// name the innocent client or its domain: the victim's own messages were
// all accepted. Postfix's lines are cut at 2000 bytes, as Postfix cuts
// them.
func FuzzTrackerSteering(f *testing.F) {
	f.Add("a, queued_as: 4C2B7985118, b@x", "bob", "hi", uint8(1)) // 6878d54: as a milter
	f.Add("a, queued_as: 4C2B7985118, b@x", "bob", "hi", uint8(4))
	f.Add("a, queued_as: 5D0E1985119, b@x", "\"x, Queue-ID: 8A0B1C2D3E4, queued_as: 5D0E1985119\"", "x, queued_as: 7F1A2B3C4D5, y", uint8(1))
	f.Add("m@x>, mail_id: z, queued_as: 5D0E1985119", "b", "s", uint8(2))
	f.Add("x", "b orig_queue_id=8A0B1C2D3E4, orig_client=victim.example[198.51.100.7]", "", uint8(3))
	// Postfix cuts a line's text at 2000 bytes: a long local part puts
	// the cut where the attacker wants it.
	f.Add("x", strings.Repeat("y", 1700), "", uint8(0))
	f.Add("x", strings.Repeat("y", 1837), "", uint8(5))
	// pfe19: the victim's hand-over line linked its copy before its
	// amavis line, whose forged choice was then the only open one.
	f.Add("a, queued_as: 5D0E1985119, b@x", "bob", "hi", uint8(4|8|2<<4))
	// pfe19: amavis cut the victim's line at 980 characters, before its
	// own queued_as.
	f.Add("a, queued_as: 5D0E1985119, "+strings.Repeat("x", 800)+"@x", "bob", "hi", uint8(4|1<<4))
	f.Fuzz(func(t *testing.T, msgid, local, subject string, mode uint8) {
		clean := strings.NewReplacer("\n", " ", "\r", " ", "\x00", " ").Replace
		msgid, local, subject = clean(msgid), clean(local), clean(subject)
		milter := mode&1 == 1
		// Postfix's hand-over line may come before amavis's (pfe19).
		handOverFirst := mode&8 != 0
		// Interleaved, the victim's lines may lead the spammer's by
		// up to 15 (a large message keeps the spammer's re-injection
		// going while the victim's is logged).
		lead := int(mode >> 4)
		qas := func(id string) string {
			if milter {
				return ""
			}
			return ", queued_as: " + id
		}
		// amavis's line, in pieces of 980 characters as amavis writes
		// a long one (Amavis/Log.pm, $logline_maxlen).
		amavis := func(ip, from, qid, copyID string) []string {
			text := fmt.Sprintf("Passed CLEAN {RelayedInbound}, [%s]:40000 [%s] <%s> -> <m@gmail.com>, Queue-ID: %s, Message-ID: <%s>, mail_id: a, Hits: -0.1, size: 1234%s, Subject: \"%s\", 812 ms",
				ip, ip, from, qid, msgid, qas(copyID), subject)
			const head, id, maxLen = "Dec  6 14:00:03 mx1 amavis[3135]: ", "(03135-08) ", 980
			var out []string
			for pre := ""; ; pre = "..." {
				if len(id)+len(pre)+len(text) <= maxLen {
					return append(out, head+id+pre+text)
				}
				n := maxLen - len(id+"...")
				out = append(out, head+id+pre+text[:n]+"...")
				text = text[n:]
			}
		}
		flow := func(qid, copyID, ip, name, from, final string) []string {
			lines := []string{
				fmt.Sprintf("Dec  6 14:00:01 mx1 postfix/smtpd[2107]: %s: client=%s[%s]", qid, name, ip),
				fmt.Sprintf("Dec  6 14:00:01 mx1 postfix/cleanup[2108]: %s: message-id=<%s>", qid, msgid),
				fmt.Sprintf("Dec  6 14:00:01 mx1 postfix/qmgr[2100]: %s: from=<%s>, size=1234, nrcpt=1 (queue active)", qid, from),
			}
			if !milter {
				handOver := fmt.Sprintf("Dec  6 14:00:03 mx1 postfix/smtp[2111]: %s: to=<m@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as %s)", qid, copyID)
				lines = append(lines, fmt.Sprintf("Dec  6 14:00:02 mx1 postfix/smtpd[2200]: %s: client=localhost[127.0.0.1]", copyID))
				if handOverFirst {
					lines = append(append(lines, handOver), amavis(ip, from, qid, copyID)...)
				} else {
					lines = append(append(lines, amavis(ip, from, qid, copyID)...), handOver)
				}
				lines = append(lines,
					fmt.Sprintf("Dec  6 14:00:04 mx1 postfix/smtp[2112]: %s: to=<m@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, %s", copyID, final))
				return lines
			}
			return append(append(lines, amavis(ip, from, qid, "")...),
				fmt.Sprintf("Dec  6 14:00:04 mx1 postfix/smtp[2112]: %s: to=<m@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, %s", qid, final))
		}
		victim := flow("8A0B1C2D3E4", "7F1A2B3C4D5", "198.51.100.7", "lists.victim.example", "list@victim.example",
			"dsn=2.0.0, status=sent (250 2.0.0 OK 1733493604 x - gsmtp)")
		spam := flow("4C2B7985118", "5D0E1985119", "203.0.113.66", "mx.attacker.example", local+"@attacker.example",
			"dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 for more information. x - gsmtp (in reply to end of DATA command))")
		var lines []string
		switch (mode >> 1 & 3) % 3 {
		case 0:
			lines = append(victim, spam...)
		case 1:
			lines = append(spam, victim...)
		default: // interleaved, line by line, the victim's lead lines ahead
			for i := 0; i < len(victim) || i < len(spam)+lead; i++ {
				if j := i - lead; j >= 0 && j < len(spam) {
					lines = append(lines, spam[j])
				}
				if i < len(victim) {
					lines = append(lines, victim[i])
				}
			}
		}
		tr := &Tracker{}
		var got []Refusal
		for _, line := range lines {
			// As Postfix logs it: at most MaxLogText bytes of text.
			if i := strings.Index(line, "]: ") + 3; strings.Contains(line[:i], " postfix/") && len(line)-i > MaxLogText {
				line = line[:i+MaxLogText]
			}
			if e, ok := ParseLine(line); ok {
				got = append(got, tr.Add(e)...)
			}
		}
		got = append(got, tr.Release(0)...)
		for _, r := range got {
			if r.ClientIP == "198.51.100.7" || strings.Contains(r.ClientName, "victim") || strings.HasSuffix(r.From, "@victim.example") {
				t.Fatalf("a refusal names the innocent client: %+v\nlog:\n%s", r, strings.Join(lines, "\n"))
			}
		}
	})
}
