package postfixlog

import (
	"strings"
	"testing"
)

// TestRev19bForgedOrigID: a content filter re-injects a spammer's message
// with sendmail -f SENDER, so pickup logs the spammer's sender. Logged in
// Postfix's internal form (info_log_address_format = internal, Postfix
// before 3.5), a sender "aaa…> orig_id=4A0001ABC1"@attacker.example
// whose length puts Postfix's 2000-byte cut right after the id reads as
// postsuper -r's line: the copy was tied to the innocent list server whose
// message 4A0001ABC1 Gmail had deferred, and Gmail's refusal of the spam
// named it (a ban). Only a queue id that postsuper logged "requeued" is
// followed; pickup's genuine line comes after postsuper's (as a real
// Postfix logs them, TestPfe19RequeuedKeepsClient).
func TestRev19bForgedOrigID(t *testing.T) {
	prefix := "5D0E1985119: uid=998 from=<"
	forged := prefix + strings.Repeat("a", MaxLogText-len(prefix)-len("> orig_id=4A0001ABC1")) + "> orig_id=4A0001ABC1"
	if len(forged) != MaxLogText {
		t.Fatalf("forged line %d bytes", len(forged))
	}
	gmail := func(id, status, reply string) string {
		return "Dec  6 19:06:25 mx1 postfix/smtp[15504]: " + id + ": to=<m@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=0.45, delays=0.32/0.12/0.01/0, dsn=5.7.1, status=" +
			status + " (host gmail-smtp-in.l.google.com[142.250.102.27] said: " + reply + " (in reply to end of DATA command))"
	}
	lines := []string{
		"Dec  6 19:06:20 mx1 postfix/smtpd[15486]: 4A0001ABC1: client=list.innocent.test[198.51.100.7]",
		"Dec  6 19:06:20 mx1 postfix/qmgr[15400]: 4A0001ABC1: from=<list@innocent.test>, size=900, nrcpt=1 (queue active)",
		gmail("4A0001ABC1", "deferred", "421 4.7.28 rate limited x - gsmtp"),
		"Dec  6 19:06:24 mx1 postfix/pickup[15483]: " + forged,
		"Dec  6 19:06:24 mx1 postfix/qmgr[15400]: 5D0E1985119: from=<aaaa@attacker.example>, size=900, nrcpt=1 (queue active)",
		gmail("5D0E1985119", "bounced", "550 5.7.1 unsolicited x - gsmtp"),
	}
	tr := &Tracker{}
	var got []Refusal
	for _, l := range lines {
		if e, ok := ParseLine(l); ok {
			got = append(got, tr.Add(e)...)
		}
	}
	got = append(got, tr.Release(0)...)
	for _, r := range got {
		if r.QueueID == "5D0E1985119" && (r.ClientIP != "" || r.Local) {
			t.Errorf("the spam's copy: client %q, local %v, orig %q; want its client unknown, not local", r.ClientIP, r.Local, r.OrigQueueID)
		}
	}
}
