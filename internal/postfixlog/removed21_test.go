package postfixlog

import "testing"

// spam2Log is Postfix's own log from a clean-clone CI run of
// TestCompanionEnforcer on a loaded machine: the copy amavis re-injected
// (6C06DA1B3ED) was refused by Gmail and removed by qmgr before amavis's
// "queued_as:" line and the original's "queued as" hand-over line named
// it.
const spam2Log = `Dec 07 02:01:16 postfix postfix/smtpd[30638]: connect from localhost[127.0.0.1]
Dec 07 02:01:16 postfix postfix/smtpd[30638]: 661A4A1A498: client=mx.spam2.test[203.0.113.20]
Dec 07 02:01:16 postfix postfix/cleanup[30371]: 661A4A1A498: message-id=<spam2-1@companion.test>
Dec 07 02:01:16 postfix postfix/qmgr[30364]: 661A4A1A498: from=<fred@spam2.test>, size=4919, nrcpt=2 (queue active)
Dec 07 02:01:16 postfix postfix/qmgr[30364]: D1BB0A1B39E: from=<dan@rate.test>, size=5081, nrcpt=2 (queue active)
Dec 07 02:01:16 postfix postfix/smtpd[30638]: disconnect from mx.spam2.test[203.0.113.20] ehlo=2 xclient=0/1 mail=1 rcpt=1 data=1 quit=1 commands=6/7
Dec 07 02:01:16 postfix postfix/smtp[30386]: D1BB0A1B39E: to=<rate@gmail.test>, relay=127.0.0.1[127.0.0.1]:32945, delay=4.6, delays=4.6/0/0/0, dsn=4.7.0, status=deferred (host 127.0.0.1[127.0.0.1] said: 421-4.7.0 [127.0.0.1      15] Our system has detected that this message is 421-4.7.0 suspicious due to the very low reputation of the sending IP address. 421-4.7.0 To best protect our users from spam, the message has been blocked. 421-4.7.0 Please visit 421 4.7.0  https://support.google.com/mail/answer/188131 for more information. 6 - gsmtp (in reply to end of DATA command))
Dec 07 02:01:16 postfix postfix/smtpd[30376]: connect from localhost[127.0.0.1]
Dec 07 02:01:16 postfix postfix/smtpd[30376]: 6C06DA1B3ED: client=localhost[127.0.0.1]
Dec 07 02:01:16 postfix postfix/cleanup[30640]: 6C06DA1B3ED: message-id=<spam2-1@companion.test>
Dec 07 02:01:16 postfix postfix/qmgr[30364]: 6C06DA1B3ED: from=<fred@spam2.test>, size=5088, nrcpt=2 (queue active)
Dec 07 02:01:16 postfix postfix/smtpd[30376]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=2 data=1 quit=1 commands=6
Dec 07 02:01:16 postfix postfix/smtp[30386]: 6C06DA1B3ED: to=<spam2@gmail.test>, relay=127.0.0.1[127.0.0.1]:32945, delay=0.01, delays=0/0/0/0, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1 [127.0.0.1      12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. Please visit 550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError 550 5.7.1 for more information. b750c23a62f3a-a7a3c1f4d2si7654321b.12 - gsmtp (in reply to end of DATA command))
Dec 07 02:01:16 postfix postfix/smtp[30387]: 6C06DA1B3ED: to=<backup@backup.test>, relay=127.0.0.1[127.0.0.1]:42929, delay=0.01, delays=0/0/0.01/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as FAKE000008)
Dec 07 02:01:16 postfix postfix/cleanup[30371]: 6F253A1B3EF: message-id=<20261207020116.6F253A1B3EF@postfix.relaykeeper.test>
Dec 07 02:01:16 postfix postfix/bounce[30389]: 6C06DA1B3ED: sender non-delivery notification: 6F253A1B3EF
Dec 07 02:01:16 postfix postfix/qmgr[30364]: 6F253A1B3EF: from=<>, size=7826, nrcpt=1 (queue active)
Dec 07 02:01:16 postfix postfix/qmgr[30364]: 6C06DA1B3ED: removed
Dec  7 02:01:16 postfix amavis[23838]: (23838-08) Passed CLEAN {RelayedInbound}, [203.0.113.20]:40008 [203.0.113.20] <fred@spam2.test> -> <backup@backup.test>,<spam2@gmail.test>, Queue-ID: 661A4A1A498, Message-ID: <spam2-1@companion.test>, mail_id: fake8, Hits: -0.1, size: 4840, queued_as: 6C06DA1B3ED, 12 ms
Dec 07 02:01:16 postfix postfix/smtp[30644]: 661A4A1A498: to=<backup@backup.test>, relay=127.0.0.1[127.0.0.1]:35145, delay=0.05, delays=0.01/0/0/0.03, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:35193): 250 2.0.0 Ok: queued as 6C06DA1B3ED)
Dec 07 02:01:16 postfix postfix/smtp[30644]: 661A4A1A498: to=<spam2@gmail.test>, relay=127.0.0.1[127.0.0.1]:35145, delay=0.05, delays=0.01/0/0/0.03, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:35193): 250 2.0.0 Ok: queued as 6C06DA1B3ED)
Dec 07 02:01:16 postfix postfix/qmgr[30364]: 661A4A1A498: removed
Dec 07 02:01:16 postfix postfix/smtp[30387]: 6F253A1B3EF: to=<fred@spam2.test>, relay=127.0.0.1[127.0.0.1]:32945, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as FAKE000018)`

// TestRemovedBeforeItsLink: a re-injected copy refused upstream waits for
// the line that links it to its original (held); but qmgr's "removed"
// line for the copy, logged before that link, made the tracker forget the
// copy, so that neither amavis's queued_as nor the hand-over line could
// link it any more, and the spammer's refusal was only reported ("the
// client is unknown"). Gmail refusing quicker than amavis answers Postfix
// is enough. A copy with a refusal held stays known until its link comes.
func TestRemovedBeforeItsLink(t *testing.T) {
	for _, mode := range []Reinjection{ReinjectAuto, ReinjectAlways} {
		tr := &Tracker{Reinjection: mode}
		rs := append(track(tr, spam2Log), tr.Release(0)...)
		found := false
		for _, r := range rs {
			if r.QueueID != "6C06DA1B3ED" {
				continue
			}
			found = true
			if r.ClientIP != "203.0.113.20" || r.OrigQueueID != "661A4A1A498" {
				t.Errorf("mode %d: the re-injected copy's refusal names client %q, original %q; want 203.0.113.20, 661A4A1A498",
					mode, r.ClientIP, r.OrigQueueID)
			}
		}
		if !found {
			t.Errorf("mode %d: no refusal of 6C06DA1B3ED in %+v", mode, rs)
		}
	}
}
