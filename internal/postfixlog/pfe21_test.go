package postfixlog

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPfe21FloodDoesNotForgetClient: any client leaves queue ids behind
// at will (smtpd logs client= at the first accepted RCPT; a RSET or a
// QUIT drops the queue file without a "removed" line), and the Tracker
// forgot the ids qmgr never logged first, the oldest first, beyond a
// tenth of MaxEntries. A spammer that held its own message in DATA (its
// qmgr line not logged yet) while it, or anyone mailing the relay's own
// domains, opened 11,000 such transactions (a tenth of 100,000) had its message's client=
// forgotten: Gmail's refusal then had no client, and the ban was only
// reported. So did one whose qmgr line a long sender had cut (never read
// as queued). An smtpd process runs one session at a time: a
// transaction it has left for another (a new client= from the same
// process) that qmgr never logged goes first, and a qmgr line cut at
// 2000 bytes still says the message is queued.
func TestPfe21FloodDoesNotForgetClient(t *testing.T) {
	// A tenth of MaxEntries (1000 here, 100,000 by default) is 100, well
	// above the 20 smtpd processes (Postfix's default_process_limit is
	// 100, a tenth of the default's tenth).
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tr := &Tracker{MaxEntries: 1000, Now: func() time.Time { now = now.Add(time.Millisecond); return now }}
	var log strings.Builder
	log.WriteString("Dec  7 10:00:00 mx postfix/smtpd[100]: 1A2B3C4D5E: client=mx.spam.test[203.0.113.66]\n")
	for i := range 1100 {
		fmt.Fprintf(&log, "Dec  7 10:00:01 mx postfix/smtpd[%d]: %X: client=flood.test[198.51.100.%d]\n", 200+i%20, 0x10000000+i, i%250)
	}
	log.WriteString("Dec  7 10:04:00 mx postfix/cleanup[300]: 1A2B3C4D5E: message-id=<spam@spam.test>\n")
	// qmgr's line, cut at 2000 bytes by a long sender, is not read.
	log.WriteString("Dec  7 10:04:00 mx postfix/qmgr[90]: 1A2B3C4D5E: from=<" + strings.Repeat("a", 1990) + "\n")
	for i := range 1100 {
		fmt.Fprintf(&log, "Dec  7 10:04:01 mx postfix/smtpd[%d]: %X: client=flood.test[198.51.100.%d]\n", 100+i%20, 0x20000000+i, i%250)
	}
	log.WriteString("Dec  7 10:04:02 mx postfix/smtp[400]: 1A2B3C4D5E: to=<u@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1, delays=0/0/0/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550 5.7.1 likely unsolicited mail - gsmtp (in reply to end of DATA command))\n")
	rs := track(tr, log.String())
	if len(rs) != 1 || rs[0].ClientIP != "203.0.113.66" {
		t.Fatalf("refusals %+v; want one, of client 203.0.113.66", rs)
	}
}
